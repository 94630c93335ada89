// Package live wires one capture session end to end: the reverse proxy
// publishes every exchange to a broker, the recorder stores it in bbolt, and
// any other consumer (analysis, TUI, line log) reads the same broker.
//
// Caveats: consumers must subscribe to the Broker before Start, or they miss
// the first exchanges. A consumer that falls behind loses exchanges (counted,
// never blocking traffic); the recorder's losses are written into the session
// as Dropped when it ends.
package live
