package tui

import (
	"context"
	"errors"
	"io"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
)

// batchEvery is how often live exchanges reach the model: one redraw per
// batch, never one per exchange.
const batchEvery = 75 * time.Millisecond

// LiveOptions configure RunLive.
type LiveOptions struct {
	Options
	Sub    *mcptap.Subscription // the TUI's own subscription to the capture's broker
	Input  io.Reader            // default: the terminal
	Output io.Writer            // default: the terminal
}

// RunLive shows a capture while it runs. It returns when the user quits or
// ctx ends; the subscription is drained by its own goroutine, which batches
// exchanges and hands them to the program every 75 ms. The subscription's
// own drop counter is added to opts.Dropped.
func RunLive(ctx context.Context, opts LiveOptions) error {
	if opts.Sub == nil {
		return errors.New("tui: RunLive needs a subscription")
	}
	sub := opts.Sub
	outer := opts.Dropped
	opts.Dropped = func() uint64 {
		n := sub.Dropped()
		if outer != nil {
			n += outer()
		}
		return n
	}
	m := New(opts.Options, true)
	eng := m.eng
	m.eng = nil // the pump goroutine owns the analysis from here on
	p := tea.NewProgram(m, programOptions(ctx, opts.Input, opts.Output)...)
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pump(pctx, sub, p.Send, batchEvery, eng, time.Now)
	}()
	_, err := p.Run()
	stop() // Send after Run is a no-op, so the pump cannot block here
	<-done
	return runErr(ctx, err)
}

// ReplayOptions configure RunReplay.
type ReplayOptions struct {
	Options
	Exchanges []mcptap.Exchange
	Input     io.Reader
	Output    io.Writer
}

// RunReplay shows a recorded session; findings are recomputed from the
// exchanges by a fresh Analysis, as if the traffic had just been seen.
func RunReplay(ctx context.Context, opts ReplayOptions) error {
	if len(opts.Exchanges) <= replayChunk {
		m := NewReplay(opts.Options, opts.Exchanges)
		p := tea.NewProgram(m, programOptions(ctx, opts.Input, opts.Output)...)
		_, err := p.Run()
		return runErr(ctx, err)
	}
	// A big session: the first screen comes at once and fills in while a
	// goroutine analyses it a chunk at a time, the status line saying how
	// far it got.
	m := New(opts.Options, false)
	eng := m.eng
	m.eng = nil // the loader owns the analysis while it runs
	exs := oauth.InOrder(opts.Exchanges)
	m.load = &loadProgress{total: len(exs), began: time.Now()}
	p := tea.NewProgram(m, programOptions(ctx, opts.Input, opts.Output)...)
	lctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		loadReplay(lctx, eng, exs, m.load.began, p.Send)
	}()
	_, err := p.Run()
	stop()
	<-done
	return runErr(ctx, err)
}

// replayChunk is how many exchanges a big replay analyses between two
// screens; a session this small opens in one go.
const replayChunk = 5000

// loadReplay analyses exs a chunk at a time and sends each snapshot with
// the progress, then the end of the recording.
func loadReplay(ctx context.Context, eng *engine, exs []mcptap.Exchange, began time.Time, send func(tea.Msg)) {
	for i := 0; i < len(exs); i += replayChunk {
		if ctx.Err() != nil {
			return
		}
		j := min(i+replayChunk, len(exs))
		s := eng.ingest(exs[i:j])
		if !s.read {
			eng.read(&s) // the flows found so far, for the screen
		}
		s.load = &loadProgress{done: j, total: len(exs), began: began}
		send(s)
	}
	s := eng.finish()
	s.load = &loadProgress{done: len(exs), total: len(exs), began: began, over: true}
	send(s)
}

// NewReplay returns a model over a finished recording: every exchange is
// analysed and the time-based rules fire at the end, as after a capture.
func NewReplay(opts Options, exs []mcptap.Exchange) *Model {
	m := New(opts, false)
	// the analysis and the traffic view take the order the requests were
	// made in, as every batch analysis does
	m.Ingest(oauth.InOrder(exs))
	m.Finish()
	return m
}

func programOptions(ctx context.Context, in io.Reader, out io.Writer) []tea.ProgramOption {
	po := []tea.ProgramOption{tea.WithContext(ctx)}
	if in != nil {
		po = append(po, tea.WithInput(in))
	}
	if out != nil {
		po = append(po, tea.WithOutput(out))
	}
	return po
}

func runErr(ctx context.Context, err error) error {
	if err == nil || (ctx.Err() != nil && errors.Is(err, tea.ErrProgramKilled)) {
		return nil
	}
	return err
}

// pump runs the analysis on what the subscription delivers, in the
// pump's own goroutine, and sends one snapshot per batch: Consume hands over
// what queued at most once per period, so a burst of traffic costs the UI one
// update and one redraw, and the analysis never runs on the UI's goroutine.
// It also ticks the analysis' clock (time-based rules fire with no new
// traffic). When the subscription closes it sends what is left and a
// closedMsg.
func pump(ctx context.Context, sub *mcptap.Subscription, send func(tea.Msg), every time.Duration, eng *engine, now func() time.Time) {
	closed := sub.Consume(ctx, mcptap.Consumer{
		Batch: func(batch []mcptap.Exchange) { send(eng.ingest(batch)) },
		Rest:  every,
		Every: tickEvery,
		Tick: func(time.Time) {
			if s, ok := eng.tick(now()); ok {
				send(s)
			}
		},
	})
	if closed {
		send(closedMsg{})
	}
}
