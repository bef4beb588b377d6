// Package testenv starts the real parts tests need: an embedded NATS
// JetStream server in the test process, a Redis client scoped to a key prefix
// of the test's own on the redis-server at REDIS_URL (default
// redis://127.0.0.1:6379/0), private redis-server processes for fault tests,
// one factory per store adapter, a gRPC server on a loopback port with a
// client, and components run in the background for the test's length.
// Nothing here is a mock: a test that needs Redis and finds none fails and
// says how to start it.
package testenv
