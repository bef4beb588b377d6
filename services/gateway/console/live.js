// live.js: one live match feed per signed-in session (WatchMatches through
// the gateway), shared by the views that show matches: staff see every
// match, an institution its own, an enterprise its demands'. Views
// subscribe and unsubscribe; the feed itself lives as long as the session.

import { Watch } from './api.js';

const MAX_EVENTS = 300;

let watch = null;
let events = []; // newest first
let status = 'stopped';
let statusDetail = '';
const subscribers = new Set();
const statusSubscribers = new Set();

// start opens the feed. Staff replay the last 24 hours so the feed is not
// empty on arrival; other roles start with what happens from now on.
export function start(role) {
  stop();
  events = [];
  const since = role === 'staff' ? new Date(Date.now() - 24 * 3600 * 1000).toISOString() : undefined;
  watch = new Watch({
    since,
    onEvent(ev) {
      ev.receivedAt = Date.now();
      events.unshift(ev);
      if (events.length > MAX_EVENTS) events.length = MAX_EVENTS;
      for (const fn of subscribers) fn(ev);
    },
    onStatus(s, detail) {
      status = s;
      statusDetail = detail || '';
      for (const fn of statusSubscribers) fn(s, statusDetail);
    },
  }).start();
}

export function stop() {
  if (watch) watch.stop();
  watch = null;
  status = 'stopped';
  for (const fn of statusSubscribers) fn(status, '');
}

// recent returns the events seen so far, newest first.
export function recent() {
  return events;
}

export function currentStatus() {
  return { status, detail: statusDetail };
}

// subscribe calls fn(event) for each new event; it returns the unsubscribe.
export function subscribe(fn) {
  subscribers.add(fn);
  return () => subscribers.delete(fn);
}

export function onStatus(fn) {
  statusSubscribers.add(fn);
  return () => statusSubscribers.delete(fn);
}
