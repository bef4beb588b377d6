package redisstore

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/carbondesk/carbondesk/internal/store"
)

// applyScript commits one store.Batch. Redis runs a script alone, but it
// does not roll back a script that fails halfway: so phase 1 reads and checks
// everything (versions, and the types of every key it will write, so that no
// write can fail with WRONGTYPE) and plans the index changes, and phase 2
// only writes.
//
// The index changes are planned by sorted set: the ids a batch adds to one
// set go in one ZADD, those it removes from one set in one ZREM. The puts of
// a batch share sets (the kind's all-records index; terms such as the
// "demand=", "state=" and "ent=" of one demand's matches), and each
// redis.call has a fixed cost, if a small one next to inserting the members
// and to the script's own Lua work. A call takes at most 500 ids: Lua's
// unpack, and so a call's arguments, stop at about 8000 values, and a call
// failing in phase 2 would leave the batch half written. Planning changes no
// outcome: Validate allows one put per record, so no (set, id) pair gets
// more than one change, and the order of the calls does not matter.
//
// Index keys are built inside the script from the terms, so they are not
// declared in KEYS; that is sound on Redis Cluster only because the prefix's
// hash tag puts them in the same slot as the declared keys.
//
//	KEYS[1]     the outbox stream
//	KEYS[1+i]   the record hash of put i
//	ARGV[1]     the index key prefix "<prefix>:ix:"
//	ARGV[2..3]  the number of puts, the number of events
//	then per put: kind, id, expected version, delete ("1" or "0"), data,
//	              index terms (encodeTerms, stored in the hash), n, then the
//	              n terms themselves
//	then 3 per event: id, subject, data
//
// The new terms come as separate arguments so that a new record, the common
// case, costs no decoding; only a record that already has terms has its old
// ones decoded. It returns {1, new version of each put...} or, when a check
// fails, {0, put number (1-based), current version}.
const applyScript = `
local call, pcall, find, sub, tonumber, unpack, min = redis.call, redis.pcall, string.find, string.sub, tonumber, unpack, math.min

local function decode(s)
  local terms, pos = {}, 1
  while pos <= #s do
    local colon = find(s, ':', pos, true)
    local n = tonumber(sub(s, pos, colon - 1))
    terms[sub(s, colon + 1, colon + n)] = true
    pos = colon + n + 1
  end
  return terms
end

-- checked remembers index keys already found usable: a batch touches the
-- same index keys many times (five matches of one demand share the kind's
-- index and three terms).
local checked = {}
local function usable(key, want)
  if checked[key] then return true end
  local t = call('TYPE', key)['ok']
  if t == 'none' or t == want then
    checked[key] = true
    return true
  end
  return false
end

-- The index changes phase 1 plans, by sorted set: adds[key] is the ZADD
-- arguments {'0', id, '0', id...} (the score a string: Redis would format a
-- Lua number with snprintf, member after member), rems[key] the ZREM ids,
-- and addKeys and remKeys the sets in the order first met.
local adds, addKeys, rems, remKeys = {}, {}, {}, {}
local function add(key, id)
  local l = adds[key]
  if l then
    l[#l + 1] = '0'
    l[#l + 1] = id
  else
    adds[key] = {'0', id}
    addKeys[#addKeys + 1] = key
  end
end
local function rem(key, id)
  local l = rems[key]
  if l then
    l[#l + 1] = id
  else
    rems[key] = {id}
    remKeys[#remKeys + 1] = key
  end
end
local function notIndex(key)
  return redis.error_reply('WRONGTYPE ' .. key .. ' is not an index sorted set')
end

local ixp, nput, nev = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local plan = {}
local a = 4

-- Phase 1: checks (and plans) only.
for i = 1, nput do
  local p = {key = KEYS[1 + i], id = ARGV[a + 1], del = ARGV[a + 3] == '1', data = ARGV[a + 4], ix = ARGV[a + 5]}
  local base = ixp .. ARGV[a] .. ':'
  local expect = tonumber(ARGV[a + 2])
  local nt = tonumber(ARGV[a + 6])
  local new = {}
  if not p.del then
    for j = a + 7, a + 6 + nt do new[ARGV[j]] = true end
  end
  a = a + 7 + nt
  -- A read fails harmlessly on a key of the wrong type: nothing is written yet.
  local cur = pcall('HMGET', p.key, 'v', 'ix')
  if cur.err then
    return redis.error_reply('WRONGTYPE ' .. p.key .. ' is not a record hash')
  end
  p.v = tonumber(cur[1]) or 0
  if expect >= 0 and p.v ~= expect then
    return {0, i, p.v}
  end
  local old = cur[2] and decode(cur[2]) or {}
  if not usable(base, 'zset') then return notIndex(base) end
  if p.del then
    if p.v > 0 then rem(base, p.id) end
  elseif p.v == 0 then
    add(base, p.id)
  end
  for t in pairs(old) do
    local key = base .. t
    if not usable(key, 'zset') then return notIndex(key) end
    if not new[t] then rem(key, p.id) end
  end
  for t in pairs(new) do
    local key = base .. t
    if not usable(key, 'zset') then return notIndex(key) end
    if not old[t] then add(key, p.id) end
  end
  plan[i] = p
end
if nev > 0 and not usable(KEYS[1], 'stream') then
  return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' is not an outbox stream')
end

-- Phase 2: writes only.
local out = {1}
for i = 1, nput do
  local p = plan[i]
  if p.del then
    if p.v > 0 then call('DEL', p.key) end
    out[#out + 1] = 0
  else
    call('HSET', p.key, 'v', p.v + 1, 'd', p.data, 'ix', p.ix)
    out[#out + 1] = p.v + 1
  end
end
-- write sends cmd to each set with its planned arguments, at most n a call
-- (ZADD's come in score-member pairs, so its n is even).
local chunk = 500
local function write(cmd, keys, args, n)
  for _, key in ipairs(keys) do
    local l = args[key]
    for from = 1, #l, n do
      call(cmd, key, unpack(l, from, min(from + n - 1, #l)))
    end
  end
end
write('ZREM', remKeys, rems, chunk)
write('ZADD', addKeys, adds, 2 * chunk)
for j = 1, nev do
  call('XADD', KEYS[1], '*', 'id', ARGV[a], 's', ARGV[a + 1], 'd', ARGV[a + 2])
  a = a + 3
end
return out
`

// Apply commits the batch with one run of applyScript.
func (s *Store) Apply(ctx context.Context, b store.Batch) ([]int64, error) {
	const op = "redisstore: apply"
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	keys := make([]string, 0, 1+len(b.Puts))
	keys = append(keys, s.outbox)
	args := make([]any, 0, 3+12*len(b.Puts)+3*len(b.Events))
	args = append(args, s.ixPrefix, len(b.Puts), len(b.Events))
	for _, p := range b.Puts {
		if err := checkKind(p.Kind); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		del := "0"
		if p.Delete {
			del = "1"
		}
		keys = append(keys, s.recordKey(p.Kind, p.ID))
		terms := store.NormalizeIndex(p.Index)
		args = append(args, p.Kind, p.ID, p.Expect, del, p.Data, encodeTerms(terms), len(terms))
		for _, t := range terms {
			args = append(args, t)
		}
	}
	for _, e := range b.Events {
		args = append(args, e.ID, e.Subject, e.Data)
	}

	res, err := s.runApply(ctx, keys, args)
	if err != nil {
		return nil, fail(op, err)
	}
	if len(res) == 3 && res[0] == 0 {
		i := res[1] - 1
		if i < 0 || int(i) >= len(b.Puts) {
			return nil, fmt.Errorf("%s: script named put %d of %d", op, res[1], len(b.Puts))
		}
		p := b.Puts[i]
		return nil, fmt.Errorf("%s: %w", op, &store.ConflictError{Kind: p.Kind, ID: p.ID, Expect: p.Expect, Current: res[2]})
	}
	if len(res) != 1+len(b.Puts) || res[0] != 1 {
		return nil, fmt.Errorf("%s: unexpected script reply %v", op, res)
	}
	return res[1:], nil
}

// runApply runs the script by its SHA, loading it on NOSCRIPT (after a
// Redis restart the script cache is empty). Neither call is retried by
// go-redis: a retry after a lost reply would run the batch twice and turn
// the caller's own success into a version conflict. The caller gets
// ErrUnavailable instead and reads back.
func (s *Store) runApply(ctx context.Context, keys []string, args []any) ([]int64, error) {
	run := func(cmdName, script string) *redis.Cmd {
		a := make([]any, 0, 3+len(keys)+len(args))
		a = append(a, cmdName, script, len(keys))
		for _, k := range keys {
			a = append(a, k)
		}
		a = append(a, args...)
		cmd := redis.NewCmd(ctx, a...)
		_ = s.rdb.Process(ctx, noRetry{cmd})
		return cmd
	}
	cmd := run("evalsha", s.apply.Hash())
	if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		cmd = run("eval", applyScript)
	}
	return cmd.Int64Slice()
}

// noRetry marks a command go-redis must not send a second time.
type noRetry struct{ *redis.Cmd }

func (noRetry) NoRetry() bool { return true }
