package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/proxy"
	"github.com/mcptap/mcptap/recorder"
)

// DefaultRecorderBuffer is how many exchange publications the recorder's
// subscription holds while a batch commits (a stream's exchange is published
// at its response head and again at its end).
const DefaultRecorderBuffer = 8192

// Config describes one capture.
type Config struct {
	Store *recorder.Store
	// Session is the session to create; the caller sets ID, Source and Name.
	// Started defaults to now; Settings gains the proxy's routes and body cap.
	Session mcptap.Session
	// Proxy configures the reverse proxy. Its Session and Publish are filled by Start.
	Proxy proxy.Config
	// Broker fans exchanges out. Subscribe UI and analysis consumers before
	// Start. Stop closes it. Nil means a new one.
	Broker *mcptap.Broker
	Log    *slog.Logger
	// RecorderBuffer is the recorder subscription's buffer; 0 means DefaultRecorderBuffer.
	RecorderBuffer int
	// BrowserListen, when set, also starts the browser (forward/MITM) proxy
	// on that loopback address, recording into the same session through the
	// same Transport. BrowserCA (required then) signs its certificates.
	BrowserListen string
	BrowserCA     *proxy.CA
	// BrowserSecret, when set, is the per-run password the browser proxy
	// requires (proxy.ForwardConfig.Secret).
	BrowserSecret string
}

// Capture is a running capture session.
type Capture struct {
	store    *recorder.Store
	session  mcptap.Session
	broker   *mcptap.Broker
	sub      *mcptap.Subscription
	writer   *recorder.Writer
	proxy    *proxy.Proxy
	browser  *proxy.Forward // nil without BrowserListen
	log      *slog.Logger
	stopOnce sync.Once
	stopErr  error
	reads    *readServer // nil when the read API could not start
}

// Start binds the proxy's listeners, creates the session in the store,
// subscribes the recorder to the broker and starts serving. If a listener
// cannot be bound, nothing is created.
func Start(cfg Config) (*Capture, error) {
	if cfg.Store == nil {
		return nil, errors.New("live: no store")
	}
	if cfg.Session.ID == "" {
		return nil, errors.New("live: session has no ID")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	broker := cfg.Broker
	if broker == nil {
		broker = mcptap.NewBroker()
	}
	sess := cfg.Session
	if sess.Started.IsZero() {
		sess.Started = time.Now()
	}
	sess.Settings = withSettings(sess.Settings, cfg.Proxy)

	pcfg := cfg.Proxy
	pcfg.Session = sess.ID
	pcfg.Publish = broker.Publish
	if pcfg.Log == nil {
		pcfg.Log = log
	}
	p, err := proxy.Listen(pcfg)
	if err != nil {
		return nil, err
	}
	var fw *proxy.Forward
	if cfg.BrowserListen != "" {
		fw, err = proxy.ListenForward(proxy.ForwardConfig{Listen: cfg.BrowserListen, CA: cfg.BrowserCA, Transport: p.Transport(), Log: pcfg.Log, Secret: cfg.BrowserSecret})
		if err != nil {
			_ = p.Shutdown(context.Background())
			return nil, err
		}
		sess.Settings["browser_proxy"] = fw.Addr()
	}
	if err := cfg.Store.CreateSession(sess); err != nil {
		_ = p.Shutdown(context.Background())
		if fw != nil {
			_ = fw.Shutdown(context.Background())
		}
		return nil, fmt.Errorf("live: %w", err)
	}
	// Other commands read this file through the capture while it records.
	reads, err := serveReads(cfg.Store, sess.ID, log)
	if err != nil {
		log.Warn("other mcptap commands cannot read this database until the capture stops", "err", err)
	}
	c := recording(cfg.Store, sess, broker, log, cfg.RecorderBuffer)
	c.proxy, c.browser, c.reads = p, fw, reads
	p.Serve()
	if fw != nil {
		fw.Serve()
	}
	log.Info("capture started", "session", sess.ID, "listen", strings.Join(p.Addrs(), ","))
	return c, nil
}

// ClientConfig is a recording of requests mcptap sends itself (mcptap
// check): no listener, the same recording Transport as the proxy, the same
// recorder, one session.
type ClientConfig struct {
	Store   *recorder.Store
	Session mcptap.Session // the caller sets ID, Source and Name
	// Base sends the requests; nil means proxy.DefaultUpstreamTransport with
	// the environment's proxy (HTTPS_PROXY, NO_PROXY).
	Base    http.RoundTripper
	BodyCap int
	Log     *slog.Logger
}

// StartClient creates the session and its recorder and returns the
// recording Transport to send through. Stop ends the session.
func StartClient(cfg ClientConfig) (*Capture, *proxy.Transport, error) {
	if cfg.Store == nil || cfg.Session.ID == "" {
		return nil, nil, errors.New("live: no store or no session ID")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base := cfg.Base
	if base == nil {
		t := proxy.DefaultUpstreamTransport(0)
		t.Proxy = http.ProxyFromEnvironment
		base = t
	}
	broker := mcptap.NewBroker()
	sess := cfg.Session
	if sess.Started.IsZero() {
		sess.Started = time.Now()
	}
	sess.Settings = withSettings(sess.Settings, proxy.Config{BodyCap: cfg.BodyCap})
	if err := cfg.Store.CreateSession(sess); err != nil {
		return nil, nil, fmt.Errorf("live: %w", err)
	}
	c := recording(cfg.Store, sess, broker, log, 0)
	return c, &proxy.Transport{Base: base, BodyCap: cfg.BodyCap, Publish: broker.Publish, Session: sess.ID}, nil
}

// recording subscribes the store's recorder to broker for a session already
// created: the part every kind of capture shares. buffer 0 means
// DefaultRecorderBuffer.
func recording(store *recorder.Store, sess mcptap.Session, broker *mcptap.Broker, log *slog.Logger, buffer int) *Capture {
	if buffer <= 0 {
		buffer = DefaultRecorderBuffer
	}
	sub := broker.Subscribe("recorder", buffer)
	return &Capture{store: store, session: sess, broker: broker, sub: sub, log: log,
		writer: store.RecordWith(sub.C, func(err error, lost int) {
			if lost == 0 {
				log.Warn("recording journal failed", "err", err)
				return
			}
			log.Error("recording failed: exchanges lost", "lost", lost, "err", err)
		})}
}

// withSettings returns a copy of s with the proxy's settings added where the
// caller did not set them.
func withSettings(s map[string]string, pc proxy.Config) map[string]string {
	out := make(map[string]string, len(s)+3)
	for k, v := range s {
		out[k] = v
	}
	var routes []string
	for _, r := range pc.Routes {
		up := ""
		if r.Upstream != nil {
			up = r.Upstream.String()
		}
		routes = append(routes, r.Listen+"="+up)
	}
	setDefault(out, "routes", strings.Join(routes, " "))
	bc := pc.BodyCap
	if bc == 0 {
		bc = proxy.DefaultBodyCap
	}
	setDefault(out, "body_cap", strconv.Itoa(bc))
	hh := pc.HostHeader
	if hh == "" {
		hh = "client"
	}
	setDefault(out, "host_header", hh)
	return out
}

func setDefault(m map[string]string, k, v string) {
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}

// Addrs returns the proxy's listen addresses, in route order.
func (c *Capture) Addrs() []string {
	if c.proxy == nil {
		return nil
	}
	return c.proxy.Addrs()
}

// BrowserAddr is the browser proxy's listen address, "" when it is not running.
func (c *Capture) BrowserAddr() string {
	if c.browser == nil {
		return ""
	}
	return c.browser.Addr()
}

// Session returns the session as created (Ended and Dropped are set in the
// store by Stop).
func (c *Capture) Session() mcptap.Session { return c.session }

// Broker returns the broker the proxy publishes to.
func (c *Capture) Broker() *mcptap.Broker { return c.broker }

// Load reads a recorded exchange of this session, bodies included, for a
// view that keeps only heads. An exchange published moments ago may still
// be in the recorder's commit group: Load waits for it (polling, at most
// loadWait) before it says not found.
func (c *Capture) Load(id string) (mcptap.Exchange, error) {
	deadline := time.Now().Add(loadWait)
	for {
		ex, err := c.store.Exchange(c.session.ID, id)
		if err == nil || !errors.Is(err, recorder.ErrNotFound) || time.Now().After(deadline) {
			return ex, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loadWait bounds how long Load waits for the recorder to commit an
// exchange: a few of its group commits (BatchWait is 50 ms).
const loadWait = 2 * time.Second

// Dropped is how many publications the recorder has missed so far.
func (c *Capture) Dropped() uint64 { return c.sub.Dropped() + c.writer.Lost() }

// Stop shuts the proxy down (in-flight exchanges finish until ctx is done),
// closes the broker so every consumer drains and stops, waits for the
// recorder's last batch, and ends the session with the recorder's drop count.
// The session is ended even when an earlier step failed. Stop is idempotent.
func (c *Capture) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		var berr error
		var bwg sync.WaitGroup
		if c.browser != nil {
			bwg.Go(func() { berr = c.browser.Shutdown(ctx) })
		}
		var perr error
		if c.proxy != nil {
			perr = c.proxy.Shutdown(ctx)
		}
		bwg.Wait()
		perr = errors.Join(perr, berr)
		c.broker.Close()
		werr := c.writer.Wait()
		dropped := c.Dropped() // the recorder fell behind, or its commits failed
		var eerr error
		if err := c.store.EndSession(c.session.ID, time.Now(), dropped); err != nil {
			eerr = fmt.Errorf("live: end session %s: %w", c.session.ID, err)
		}
		if dropped > 0 {
			c.log.Warn("recorder fell behind", "session", c.session.ID, "dropped", dropped)
		}
		if c.reads != nil {
			c.reads.close(ctx)
		}
		c.stopErr = errors.Join(perr, werr, eerr)
	})
	return c.stopErr
}
