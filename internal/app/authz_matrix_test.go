package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
)

// call is one prepared case of the matrix: the request, and what it acts on.
type call struct {
	req proto.Message
	// object is the id of what the call acts on or should list, if
	// anything: a list must show it exactly when the caller may see it.
	object string
	// snapshot, when set, reads the object as staff see it: a refused
	// write must leave it as it was.
	snapshot func(t *testing.T) proto.Message
	// check, when set, verifies the outcome beyond the status code: ok is
	// whether the call succeeded.
	check func(t *testing.T, ok bool)
}

// onInstitution is a call acting on an institution.
func onInstitution(a *testApp, in *registryv1.Institution, req proto.Message) call {
	return call{req: req, object: in.GetId(), snapshot: func(t *testing.T) proto.Message { return a.read(t, in.GetId()) }}
}

// fixture prepares the calls of one RPC. request sets up, as district staff,
// whatever the call needs (a PENDING institution to approve...) belonging to
// the organisation org, and returns the call. A review's object belongs to
// neither caller, whatever org is: that no organisation reviews itself, not
// even its staff, is the domain's rule, tested in TestAPI5.
type fixture struct {
	request func(t *testing.T, a *testApp, org string) call
	// listed returns the ids a response lists (FilteredList methods).
	listed func(resp proto.Message) []string
}

// fixtures holds one fixture per entry of auth.Table(). A new RPC needs a
// table entry AND a fixture here, or TestAuthorizationMatrix fails.
func fixtures() map[string]fixture {
	pendingOf := func(t *testing.T, a *testApp, org string) *registryv1.Institution {
		return a.inState(t, org, registryv1.InstitutionState_INSTITUTION_STATE_PENDING)
	}
	all := catalogFixtures()
	maps.Copy(all, matchingFixtures())
	maps.Copy(all, talentFixtures())
	maps.Copy(all, map[string]fixture{
		registryv1.RegistryService_RegisterInstitution_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				marker := newMarker()
				return call{
					req: registration(org, marker),
					check: func(t *testing.T, ok bool) {
						want := 0
						if ok {
							want = 1
						}
						if got := a.listedIDs(t, a.staff(t), marker); len(got) != want {
							t.Errorf("after the call staff find %d institutions of %s, want %d", len(got), org, want)
						}
					},
				}
			},
		},
		registryv1.RegistryService_GetInstitution_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				in := pendingOf(t, a, org)
				return onInstitution(a, in, &registryv1.GetInstitutionRequest{Id: in.GetId()})
			},
		},
		registryv1.RegistryService_ListInstitutions_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				marker := newMarker()
				in := a.register(t, org, marker)
				return onInstitution(a, in, &registryv1.ListInstitutionsRequest{NameContains: marker, PageSize: 200})
			},
			listed: func(resp proto.Message) []string {
				return ids(resp.(*registryv1.ListInstitutionsResponse).GetInstitutions())
			},
		},
		registryv1.RegistryService_UpdateInstitution_FullMethodName: {
			request: func(t *testing.T, a *testApp, org string) call {
				in := pendingOf(t, a, org)
				return onInstitution(a, in, &registryv1.UpdateInstitutionRequest{
					Id: in.GetId(), Version: in.GetVersion(),
					Institution: &registryv1.Institution{NameEn: "Chujiang Carbon Finance Bank, renamed"},
					UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"name_en"}},
				})
			},
		},
		registryv1.RegistryService_ApproveInstitution_FullMethodName: {
			request: func(t *testing.T, a *testApp, _ string) call {
				in := pendingOf(t, a, newOrg(t))
				return onInstitution(a, in, &registryv1.ApproveInstitutionRequest{Id: in.GetId(), Reason: "licences checked", Version: in.GetVersion()})
			},
		},
		registryv1.RegistryService_RejectInstitution_FullMethodName: {
			request: func(t *testing.T, a *testApp, _ string) call {
				in := pendingOf(t, a, newOrg(t))
				return onInstitution(a, in, &registryv1.RejectInstitutionRequest{Id: in.GetId(), Reason: "licence expired"})
			},
		},
		registryv1.RegistryService_SuspendInstitution_FullMethodName: {
			request: func(t *testing.T, a *testApp, _ string) call {
				in := a.inState(t, newOrg(t), registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE)
				return onInstitution(a, in, &registryv1.SuspendInstitutionRequest{Id: in.GetId(), Reason: "annual report overdue"})
			},
		},
		registryv1.RegistryService_ReinstateInstitution_FullMethodName: {
			request: func(t *testing.T, a *testApp, _ string) call {
				in := a.inState(t, newOrg(t), registryv1.InstitutionState_INSTITUTION_STATE_SUSPENDED)
				return onInstitution(a, in, &registryv1.ReinstateInstitutionRequest{Id: in.GetId(), Reason: "report filed"})
			},
		},
		registryv1.RegistryService_GetRegistryStats_FullMethodName: {
			request: func(*testing.T, *testApp, string) call {
				return call{req: &registryv1.GetRegistryStatsRequest{}}
			},
		},
	})
	return all
}

// matrixCase is one caller of the matrix.
type matrixCase struct {
	name string
	// token returns the bearer token to send ("" for none) for a caller of
	// organisation callerOrg.
	token func(t *testing.T, callerOrg string) string
	role  auth.Role // "" for the bad-token cases
	// ownOrg: the object belongs to the caller's organisation.
	ownOrg bool
}

// TestAuthorizationMatrix calls every RPC the running server exposes, over
// real gRPC, as every kind of caller, and holds each answer to what
// auth.Table() says: Unauthenticated for a missing, expired, forged or
// misaddressed token; PermissionDenied for a role the rule does not list;
// and for the roles it lists, the rule's ownership: another organisation's
// object answers NotFound (OwnObject, VisibleObject) or is left out of the
// list (FilteredList), creating for another organisation answers
// PermissionDenied (CreateOwn); staff pass every ownership rule.
//
// It fails when the server exposes a method the table has no entry for, when
// the table has an entry the server does not expose, and when an entry has
// no fixture.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil, nil)
	table := auth.Table()
	fx := fixtures()

	served := servedMethods(t, a.conn)
	for _, m := range served {
		if _, ok := table[m]; !ok {
			t.Errorf("the server exposes %s, but auth.Table() has no entry for it (it is refused to every caller)", m)
		}
	}
	for m := range table {
		if !slices.Contains(served, m) {
			t.Errorf("auth.Table() has an entry for %s, which the server does not expose", m)
		}
		f, ok := fx[m]
		switch {
		case !ok:
			t.Errorf("auth.Table() has an entry for %s, but the matrix has no fixture for it: add one to fixtures()", m)
		case table[m].Ownership == auth.FilteredList && f.listed == nil:
			t.Errorf("the fixture of %s, a FilteredList, does not say what a response lists", m)
		}
	}
	for m := range fx {
		if _, ok := table[m]; !ok {
			t.Errorf("fixture for %s, which auth.Table() does not list", m)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The callers: four bad tokens (of staff, who could otherwise call
	// anything), then each role as the object's organisation and as another.
	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	staffToken := func(iss auth.Issuer) func(*testing.T, string) string {
		return func(t *testing.T, org string) string {
			tok, err := iss.Mint(auth.Caller{Subject: "matrix-staff", Role: auth.Staff, Org: org}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}
	expired := a.issuer
	expired.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	forged := a.issuer
	forged.Key = otherKey
	misaddressed := a.issuer
	misaddressed.Audience = "another-service"
	cases := []matrixCase{
		{name: "no-token", token: func(*testing.T, string) string { return "" }},
		{name: "expired", token: staffToken(expired)},
		{name: "bad-signature", token: staffToken(forged)},
		{name: "wrong-audience", token: staffToken(misaddressed)},
	}
	for _, role := range auth.Roles {
		tok := func(t *testing.T, org string) string { return a.token(t, auth.Caller{Role: role, Org: org}) }
		cases = append(cases,
			matrixCase{name: string(role) + "-own-org", token: tok, role: role, ownOrg: true},
			matrixCase{name: string(role) + "-other-org", token: tok, role: role, ownOrg: false})
	}

	// Subtests are named service/method/caller, such as
	// RegistryService/GetInstitution/institution-other-org; the methods run
	// in parallel, each case on objects of its own.
	byService := map[string][]string{}
	for _, method := range served {
		service, _ := splitMethod(method)
		byService[service] = append(byService[service], method)
	}
	for _, service := range slices.Sorted(maps.Keys(byService)) {
		t.Run(service[strings.LastIndex(service, ".")+1:], func(t *testing.T) {
			for _, method := range byService[service] {
				_, name := splitMethod(method)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					for _, c := range cases {
						t.Run(c.name, func(t *testing.T) {
							runCase(t, a, method, table[method], fx[method], c)
						})
					}
				})
			}
		})
	}
}

// runCase makes one call of the matrix and checks its outcome.
func runCase(t *testing.T, a *testApp, method string, rule auth.Rule, f fixture, c matrixCase) {
	objectOrg, callerOrg := newOrg(t), newOrg(t)
	if c.ownOrg {
		callerOrg = objectOrg
	}
	cl := f.request(t, a, objectOrg)
	var before proto.Message
	if cl.snapshot != nil {
		before = cl.snapshot(t)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if tok := c.token(t, callerOrg); tok != "" {
		ctx = bearer(ctx, tok)
	}
	mustSee := c.role == auth.Staff || c.ownOrg
	md := methodDesc(t, method, cl.req)
	var listed []string
	var err error
	if md.IsStreamingServer() {
		listed, err = invokeStream(ctx, a, method, md, cl, f.listed, mustSee)
	} else {
		resp := newResponse(t, md)
		err = a.conn.Invoke(ctx, method, cl.req, resp)
		if err == nil && f.listed != nil {
			listed = f.listed(resp)
		}
	}

	want := expectedCode(t, rule, c)
	if got := status.Code(err); got != want {
		t.Fatalf("%s as %s: %v (%s), want %s (rule: roles %v, %s)", method, c.name, err, got, want, rule.Roles, rule.Ownership)
	}
	ok := err == nil
	if cl.check != nil {
		cl.check(t, ok)
	}
	if ok && rule.Ownership == auth.FilteredList {
		if seen := slices.Contains(listed, cl.object); seen != mustSee {
			t.Errorf("%s as %s lists the object's organisation's non-public %s: %v, want %v", method, c.name, cl.object, seen, mustSee)
		}
	}
	if !ok && rule.Write && before != nil {
		if after := cl.snapshot(t); !proto.Equal(before, after) {
			t.Errorf("a refused %s changed %s:\nbefore %v\nafter  %v", method, cl.object, before, after)
		}
	}
}

// expectedCode derives a case's answer from the method's rule.
func expectedCode(t *testing.T, rule auth.Rule, c matrixCase) codes.Code {
	t.Helper()
	switch {
	case c.role == "":
		return codes.Unauthenticated
	case !rule.Allows(c.role):
		return codes.PermissionDenied
	case c.role == auth.Staff:
		return codes.OK
	}
	switch rule.Ownership {
	case auth.NoObject, auth.FilteredList:
		return codes.OK
	case auth.OwnObject, auth.VisibleObject:
		if c.ownOrg {
			return codes.OK
		}
		return codes.NotFound
	case auth.CreateOwn:
		if c.ownOrg {
			return codes.OK
		}
		return codes.PermissionDenied
	}
	t.Fatalf("ownership rule %d: the matrix does not know what it should answer; teach expectedCode", rule.Ownership)
	return codes.Unknown
}

// methodDesc returns the descriptor of method, after checking req is its
// request type.
func methodDesc(t *testing.T, method string, req proto.Message) protoreflect.MethodDescriptor {
	t.Helper()
	service, name := splitMethod(method)
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		t.Fatalf("%s is not a service", service)
	}
	md := sd.Methods().ByName(protoreflect.Name(name))
	if md == nil {
		t.Fatalf("%s: no such method", method)
	}
	if md.IsStreamingClient() {
		t.Fatalf("%s streams requests: the matrix does not know how to call it; teach runCase", method)
	}
	if got := req.ProtoReflect().Descriptor().FullName(); got != md.Input().FullName() {
		t.Fatalf("fixture of %s makes a %s, want a %s", method, got, md.Input().FullName())
	}
	return md
}

// newResponse returns an empty response message of md.
func newResponse(t *testing.T, md protoreflect.MethodDescriptor) proto.Message {
	t.Helper()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		t.Fatalf("%s: %v", md.FullName(), err)
	}
	return mt.New().Interface()
}

// streamQuiet is how long a server stream that a caller must not see the
// object on is watched: a live feed never ends by itself, so the matrix
// takes a stream still open after it as answered OK.
const streamQuiet = time.Second

// invokeStream calls a server-streaming method: it sends cl.req and reads
// responses until the stream ends (its status is the call's), until one
// lists cl.object, or, still open, for streamQuiet (8 s when the caller
// must see the object). It returns the ids the responses listed.
func invokeStream(ctx context.Context, a *testApp, method string, md protoreflect.MethodDescriptor, cl call, listed func(proto.Message) []string, mustSee bool) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := a.conn.NewStream(ctx, &grpc.StreamDesc{StreamName: string(md.Name()), ServerStreams: true}, method)
	if err != nil {
		return nil, err
	}
	// A send error is io.EOF when the server already ended the call: the
	// status then comes from receiving.
	if err := s.SendMsg(cl.req); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	type received struct {
		msg proto.Message
		err error
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		return nil, err
	}
	got := make(chan received)
	go func() {
		for {
			out := mt.New().Interface()
			err := s.RecvMsg(out)
			select {
			case got <- received{out, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	wait := streamQuiet
	if mustSee {
		wait = 8 * time.Second
	}
	quiet := time.NewTimer(wait)
	defer quiet.Stop()
	var ids []string
	for {
		select {
		case r := <-got:
			switch {
			case errors.Is(r.err, io.EOF):
				return ids, nil
			case r.err != nil:
				return ids, r.err
			}
			if listed != nil {
				ids = append(ids, listed(r.msg)...)
			}
			if cl.object != "" && slices.Contains(ids, cl.object) {
				return ids, nil
			}
		case <-quiet.C:
			return ids, nil
		}
	}
}

// splitMethod splits "/pkg.Service/Method" into "pkg.Service" and "Method".
func splitMethod(full string) (service, method string) {
	service, method, _ = strings.Cut(strings.TrimPrefix(full, "/"), "/")
	return service, method
}

// servedMethods asks the running server, through the server reflection
// API, for every method of every service it exposes, as full method names,
// leaving out the public health and reflection services.
func servedMethods(t *testing.T, conn *grpc.ClientConn) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatalf("reflection: %v", err)
	}
	defer func() { _ = stream.CloseSend() }()
	ask := func(req *reflectionpb.ServerReflectionRequest) *reflectionpb.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatalf("reflection send: %v", err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("reflection receive: %v", err)
		}
		if e := resp.GetErrorResponse(); e != nil {
			t.Fatalf("reflection: %s", e.GetErrorMessage())
		}
		return resp
	}

	var methods []string
	list := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	for _, svc := range list.GetListServicesResponse().GetService() {
		name := svc.GetName()
		if auth.IsPublic("/" + name + "/") {
			continue
		}
		files := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: name}})
		found := false
		for _, raw := range files.GetFileDescriptorResponse().GetFileDescriptorProto() {
			fd := &descriptorpb.FileDescriptorProto{}
			if err := proto.Unmarshal(raw, fd); err != nil {
				t.Fatalf("reflection: file descriptor of %s: %v", name, err)
			}
			for _, sd := range fd.GetService() {
				full := sd.GetName()
				if fd.GetPackage() != "" {
					full = fd.GetPackage() + "." + full
				}
				if full != name {
					continue
				}
				found = true
				for _, m := range sd.GetMethod() {
					methods = append(methods, "/"+name+"/"+m.GetName())
				}
			}
		}
		if !found {
			t.Fatalf("reflection: no file descriptor describes service %s", name)
		}
	}
	if len(methods) == 0 {
		t.Fatal("reflection: the server exposes no methods besides health and reflection")
	}
	slices.Sort(methods)
	return methods
}
