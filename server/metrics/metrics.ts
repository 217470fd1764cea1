// The server's Prometheus metrics (prom-client), one registry per running server
// (tests run several servers in one process; the global default registry is
// never used). Counters and histograms are fed by the delivery worker and the
// fan-out (observer hooks) and by the event log (refusals, holds): only codes and
// numbers, never anything of a post. Gauges are read when scraped.

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ERROR_MESSAGES } from '../../shared/index.ts';
import type { LoopDelay } from '../http/loop-delay.ts';
import type { EventFields, EventLog, EventName } from '../log/log.ts';
import { REFUSAL_MESSAGES } from '../pipeline/reasons.ts';
import type { Sql } from '../store/db.ts';
import { QueueStore, type DeliveryKind } from '../store/queue.ts';
import { countHeld } from '../store/held.ts';

export type DeliveryOutcome = 'sent' | 'deferred' | 'failed';

/** What the delivery worker reports for each row it tried. */
export interface DeliveryEvent {
  kind: DeliveryKind;
  outcome: DeliveryOutcome;
  /** The relay's or the renderer's code (SMTP_550, NET_ECONNREFUSED, RENDER_FAILED); absent when sent. */
  code?: string;
}

/** What the fan-out reports: each page of wrapped keys, and each post's whole fan-out. */
export interface FanoutObserver {
  wrapPage(seconds: number, keys: number): void;
  fanout(seconds: number, copies: number, notices: number): void;
}

/** Reason labels are the closed set of codes (reasons.ts): a label's values stay bounded. */
const REASONS = new Set<string>([...Object.keys(ERROR_MESSAGES), ...Object.keys(REFUSAL_MESSAGES)]);

export class ServerMetrics implements FanoutObserver {
  readonly registry = new Registry();
  private readonly sent;
  private readonly deferred;
  private readonly failed;
  private readonly refusals;
  private readonly posts;
  private readonly fanoutSeconds;
  private readonly wrapSeconds;
  private readonly wrappedKeys;

  constructor(o: { sql: Sql; loopDelay?: LoopDelay; defaultMetrics?: boolean }) {
    const registers = [this.registry];
    const kinds = ['kind'] as const;
    this.sent = new Counter({ name: 'letterlock_copies_sent_total', help: 'Mails the relay accepted, by kind (copy: a post\'s copy; notice, bounce, report: the list\'s own mail).', labelNames: kinds, registers });
    this.deferred = new Counter({ name: 'letterlock_copies_deferred_total', help: 'Delivery attempts that failed temporarily and will be retried, by kind.', labelNames: kinds, registers });
    this.failed = new Counter({ name: 'letterlock_copies_failed_total', help: 'Mails given up (permanent refusal, too old, or not renderable), by kind.', labelNames: kinds, registers });
    this.refusals = new Counter({ name: 'letterlock_refusals_total', help: 'Posts refused, by reason code (server/pipeline/reasons.ts).', labelNames: ['reason'] as const, registers });
    this.posts = new Counter({ name: 'letterlock_posts_total', help: 'Posts by outcome: accepted (fan-out finished), held, refused.', labelNames: ['outcome'] as const, registers });
    this.fanoutSeconds = new Histogram({
      name: 'letterlock_fanout_duration_seconds', help: 'Time to wrap and queue one post for every member.',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600], registers,
    });
    this.wrapSeconds = new Histogram({
      name: 'letterlock_wrap_page_duration_seconds', help: 'Time to wrap K to one page of member keys (up to 500).',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers,
    });
    this.wrappedKeys = new Counter({ name: 'letterlock_wrapped_keys_total', help: 'Session keys wrapped to member keys (one PKESK each).', registers });
    for (const kind of ['copy', 'notice', 'bounce', 'report']) {
      // Present from the start, so a rate() has a zero to begin with.
      this.sent.inc({ kind }, 0);
      this.deferred.inc({ kind }, 0);
      this.failed.inc({ kind }, 0);
    }
    const queue = new QueueStore(o.sql);
    new Gauge({
      name: 'letterlock_queue_depth', help: 'Rows of the outbound queue waiting (queued) or handed to the relay (sending).', labelNames: ['state'] as const, registers,
      async collect() {
        let counts: Record<string, number>;
        try {
          counts = await queue.depth();
        } catch {
          return; // the database is closed or failing: /health says so; the scrape goes on
        }
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'letterlock_held_posts', help: 'Posts held for a moderator.', registers,
      async collect() {
        try { this.set(await countHeld(o.sql)); } catch { /* see above */ }
      },
    });
    if (o.loopDelay) this.watchLoop(o.loopDelay);
    if (o.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** The loop-delay figures of /health, as a gauge (given once the server's start-up work is done). */
  watchLoop(loop: LoopDelay): void {
    new Gauge({
      name: 'letterlock_event_loop_delay_seconds', help: 'Worst delay of the main event loop in the last second and the last minute.', labelNames: ['window'] as const,
      registers: [this.registry],
      collect() {
        const s = loop.snapshot();
        this.set({ window: '1s' }, s.lastSecondMs / 1000);
        this.set({ window: '60s' }, s.maxLastMinuteMs / 1000);
      },
    });
  }

  delivery(e: DeliveryEvent): void {
    const c = e.outcome === 'sent' ? this.sent : e.outcome === 'deferred' ? this.deferred : this.failed;
    c.inc({ kind: e.kind });
  }

  wrapPage(seconds: number, keys: number): void {
    this.wrapSeconds.observe(seconds);
    this.wrappedKeys.inc(keys);
  }

  fanout(seconds: number): void {
    this.fanoutSeconds.observe(seconds);
    this.posts.inc({ outcome: 'accepted' });
  }

  /** The event log, passed on unchanged, with refusals and holds counted on the way. */
  tap(log: EventLog): EventLog {
    const see = (event: EventName, fields?: EventFields) => {
      if (event === 'post.refused') {
        const code = fields?.code;
        this.refusals.inc({ reason: code && REASONS.has(code) ? code : 'OTHER' });
        this.posts.inc({ outcome: 'refused' });
      } else if (event === 'smtp.too_large') {
        // Refused while streaming, before the pipeline (SMTP 552): the same reason code as a post found too large later.
        this.refusals.inc({ reason: 'TOO_LARGE' });
        this.posts.inc({ outcome: 'refused' });
      } else if (event === 'post.held') {
        this.posts.inc({ outcome: 'held' });
      }
    };
    return {
      info: (event, fields) => { see(event, fields); log.info(event, fields); },
      warn: (event, fields) => { see(event, fields); log.warn(event, fields); },
      error: (event, fields) => { see(event, fields); log.error(event, fields); },
      // The wrapped log's file handling stays reachable (SIGHUP reopens the file: log rotation).
      ...(log.reopen ? { reopen: () => log.reopen!() } : {}),
    };
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  scrape(): Promise<string> {
    return this.registry.metrics();
  }
}
