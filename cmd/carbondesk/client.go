package main

// The client commands: verbs for each role's main tasks, sent over gRPC to
// a running desk with a bearer token. Each noun (institutions, products,
// demands, matches, events, talents, stats) is one command with the shared
// connection flags; the verbs live in client_<noun>.go.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/cli"
	"github.com/carbondesk/carbondesk/internal/protoenum"
)

// tokenEnv is the environment variable the client commands read a token
// from when --token and --token-file are not given.
const tokenEnv = "CARBONDESK_TOKEN"

// clientCommands are the client verbs and 'seed', for the root command.
func clientCommands() []*cobra.Command {
	return []*cobra.Command{
		institutionsCmd(), productsCmd(), demandsCmd(), matchesCmd(),
		eventsCmd(), talentsCmd(), statsCmd(), seedCmd(),
	}
}

// conn holds the connection flags every client command shares.
type conn struct {
	server    string
	token     string
	tokenFile string
	json      bool
	timeout   time.Duration
}

// nounCmd makes a noun's command with the shared flags; its verbs reach
// them through c.
func nounCmd(use, short string, c *conn) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, SilenceUsage: true, SilenceErrors: true}
	f := cmd.PersistentFlags()
	f.StringVar(&c.server, "server", "127.0.0.1:7070", "gRPC address of the desk")
	f.StringVar(&c.token, "token", "", "bearer token (default: $"+tokenEnv+"; mint one with 'carbondesk token')")
	f.StringVar(&c.tokenFile, "token-file", "", "read the bearer token from this file")
	f.BoolVar(&c.json, "json", false, "print the response as protojson (NDJSON for watch) instead of a table")
	f.DurationVar(&c.timeout, "timeout", 10*time.Second, "deadline of each call (watch: none unless given)")
	return cmd
}

// bearer is the token from --token, --token-file or the environment.
func (c *conn) bearer() (string, error) {
	switch {
	case c.token != "":
		return c.token, nil
	case c.tokenFile != "":
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	case os.Getenv(tokenEnv) != "":
		return os.Getenv(tokenEnv), nil
	}
	return "", fmt.Errorf("no token: give --token, --token-file or $%s (carbondesk token --role staff)", tokenEnv)
}

// session is one command's connection to the desk.
type session struct {
	cc  *grpc.ClientConn
	ctx context.Context
	*conn
	cmd    *cobra.Command
	cancel context.CancelFunc
}

// dial connects to --server and returns the call context carrying the
// token, bounded by --timeout when bounded is true or the flag was given.
// Close the session when done.
func (c *conn) dial(cmd *cobra.Command, bounded bool) (*session, error) {
	tok, err := c.bearer()
	if err != nil {
		return nil, err
	}
	cc, err := grpc.NewClient(c.server, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("--server %q: %w", c.server, err)
	}
	ctx := metadata.AppendToOutgoingContext(cmd.Context(), "authorization", "Bearer "+tok)
	cancel := context.CancelFunc(func() {})
	if bounded || cmd.Flags().Changed("timeout") {
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
	}
	return &session{cc: cc, ctx: ctx, conn: c, cmd: cmd, cancel: cancel}, nil
}

func (s *session) Close() {
	s.cancel()
	_ = s.cc.Close()
}

func (s *session) registry() registryv1.RegistryServiceClient {
	return registryv1.NewRegistryServiceClient(s.cc)
}
func (s *session) catalog() catalogv1.CatalogServiceClient {
	return catalogv1.NewCatalogServiceClient(s.cc)
}
func (s *session) matching() matchingv1.MatchingServiceClient {
	return matchingv1.NewMatchingServiceClient(s.cc)
}
func (s *session) talent() talentv1.TalentServiceClient { return talentv1.NewTalentServiceClient(s.cc) }

// print writes resp as JSON with --json, else the table table builds.
func (s *session) print(resp proto.Message, table func() *cli.Table) error {
	if s.json {
		return cli.JSON(s.cmd.OutOrStdout(), resp)
	}
	return table().Write(s.cmd.OutOrStdout())
}

// nextPage tells a person (on stderr) how to get the next page.
func (s *session) nextPage(token string) {
	if token != "" && !s.json {
		fmt.Fprintf(s.cmd.ErrOrStderr(), "more: --page-token %s\n", token)
	}
}

// run wraps a verb: dial, call, close, and errors marked with the verb.
func (c *conn) run(op string, bounded bool, call func(s *session, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		s, err := c.dial(cmd, bounded)
		if err != nil {
			return err
		}
		defer s.Close()
		return cli.Wrap(op, call(s, args))
	}
}

// readRequest fills req from a protojson file, when path is set.
func readRequest(path string, req proto.Message) error {
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--file: %w", err)
	}
	if err := protojson.Unmarshal(data, req); err != nil {
		return fmt.Errorf("--file %s: %w", path, err)
	}
	return nil
}

// pagingFlags adds --page-size and --page-token.
func pagingFlags(cmd *cobra.Command, size *int32, token *string) {
	cmd.Flags().Int32Var(size, "page-size", 50, "results per page")
	cmd.Flags().StringVar(token, "page-token", "", "page to read, from the previous page's answer")
}

// enumFlag is a flag holding an enum by its short name (BANK).
type enumFlag[P protoenum.Enum] struct{ v *P }

func (f enumFlag[P]) String() string {
	if f.v == nil {
		return ""
	}
	return protoenum.Key(*f.v)
}
func (f enumFlag[P]) Set(s string) error {
	v, err := protoenum.Parse[P](s)
	if err != nil {
		return err
	}
	*f.v = v
	return nil
}
func (f enumFlag[P]) Type() string { return "name" }

// enumVar binds an enum flag; its help lists the known names.
func enumVar[P protoenum.Enum](cmd *cobra.Command, v *P, name, usage string) {
	cmd.Flags().Var(enumFlag[P]{v}, name, usage+": "+strings.ToLower(strings.Join(protoenum.Keys[P](), ", ")))
}

// enumsFlag is a repeatable enum flag.
type enumsFlag[P protoenum.Enum] struct{ v *[]P }

func (f enumsFlag[P]) String() string {
	if f.v == nil {
		return ""
	}
	names := make([]string, len(*f.v))
	for i, v := range *f.v {
		names[i] = protoenum.Key(v)
	}
	return strings.Join(names, ",")
}
func (f enumsFlag[P]) Set(s string) error {
	for part := range strings.SplitSeq(s, ",") {
		v, err := protoenum.Parse[P](part)
		if err != nil {
			return err
		}
		*f.v = append(*f.v, v)
	}
	return nil
}
func (f enumsFlag[P]) Type() string { return "names" }

func enumsVar[P protoenum.Enum](cmd *cobra.Command, v *[]P, name, usage string) {
	cmd.Flags().Var(enumsFlag[P]{v}, name, usage+" (repeat or comma-separate): "+strings.ToLower(strings.Join(protoenum.Keys[P](), ", ")))
}

// key is an enum's short name for tables.
func key[P protoenum.Enum](p P) string { return protoenum.Key(p) }

// when reads a time: RFC 3339, a date (2026-05-01, Beijing time), or a
// duration from now (48h; -2h is in the past).
func when(s string) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return timestamppb.New(time.Now().Add(d)), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return timestamppb.New(t), nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, beijing); err == nil {
		return timestamppb.New(t), nil
	}
	return nil, fmt.Errorf("time %q: want RFC 3339 (2026-05-01T09:00:00+08:00), a date or a duration from now (48h)", s)
}

// beijing is the district's time zone, for reading and showing times.
var beijing = time.FixedZone("CST", 8*60*60)

// showTime formats a timestamp in Beijing time for tables.
func showTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().In(beijing).Format("2006-01-02 15:04")
}

// yuan formats whole yuan with thousands separators.
func yuan(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// oneArg is cobra.ExactArgs(1) naming the argument in its error.
func oneArg(name string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("want one argument: %s", name)
		}
		return nil
	}
}
