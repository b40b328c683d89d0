import type { ResourceSet } from "../snapshot.js";

/**
 * A version the server cannot vouch for: the client may hold some version of the resource, or
 * none. After a NACK, Envoy may have applied part of the rejected response (CDS and LDS apply the
 * resources that were valid), so every name the rejected response touched is uncertain until a
 * response the client accepts settles it.
 */
export const UNCERTAIN: unique symbol = Symbol("uncertain");

/** What a client holds of one name: a version, nothing (null), or an uncertain version. */
export type HeldVersion = string | null | typeof UNCERTAIN;

/** The names a subscription covers: a shared set from NameSets, or "*" for a wildcard. */
export type Scope = ReadonlySet<string> | "*";

/**
 * What a client holds of one type, as the server knows it: the resources of `base` within `scope`
 * — both shared by every stream that got the same push, so thousands of streams in one state
 * cost one set — corrected per stream by `overrides`. The server's view may be pessimistic (it
 * may think the client lacks or is unsure of what it has, which costs a re-send) but never
 * optimistic: it never thinks the client holds a version it does not.
 */
export class Holding {
  constructor(
    public base: ResourceSet | undefined = undefined,
    public scope: Scope | undefined = undefined,
    /** Allocated on first use: most streams never need one. */
    public overrides: Map<string, HeldVersion> | undefined = undefined,
  ) {}

  /** The version held of `name`: a version, undefined (none), or UNCERTAIN. */
  version(name: string): string | undefined | typeof UNCERTAIN {
    const o = this.overrides?.get(name);
    if (o !== undefined) return o ?? undefined;
    if (!this.base || !this.scope) return undefined;
    if (this.scope !== "*" && !this.scope.has(name)) return undefined;
    return this.base.resources.get(name)?.version;
  }

  /** Names the client holds a version of, certain or not. */
  names(): Set<string> {
    const out = new Set<string>();
    const { base, scope } = this;
    if (base && scope) {
      if (scope === "*") for (const name of base.resources.keys()) out.add(name);
      else for (const name of scope) if (base.resources.has(name)) out.add(name);
    }
    if (this.overrides)
      for (const [name, v] of this.overrides) {
        if (v === null) out.delete(name);
        else out.add(name);
      }
    return out;
  }

  /** Whether the client holds exactly `base` within `scope`, with nothing per stream. */
  isExactly(scope: Scope): boolean {
    return this.base !== undefined && this.scope === scope && !this.overrides?.size;
  }

  /** Whether anything was ever sent (or proven held). */
  get known(): boolean {
    return this.base !== undefined || (this.overrides?.size ?? 0) > 0;
  }

  /** The client now holds exactly `set` within `scope`. */
  settle(set: ResourceSet, scope: Scope): void {
    this.base = set;
    this.scope = scope;
    this.overrides = undefined;
  }

  set(name: string, version: HeldVersion): void {
    this.overrides ??= new Map();
    this.overrides.set(name, version);
  }

  copy(): Holding {
    return new Holding(this.base, this.scope, this.overrides?.size ? new Map(this.overrides) : undefined);
  }
}

/** The names a response set: lists of names (shared with other streams), or "all". */
export type Touched = readonly (readonly string[])[] | "all";

function* touchedNames(touched: Exclude<Touched, "all">): Iterable<string> {
  for (const list of touched) yield* list;
}

/** One response sent on a type and not answered yet. */
export interface Unanswered {
  readonly nonce: string;
  readonly version: string;
  /** What the client held before it, and holds if it accepts it. */
  readonly before: Holding;
  readonly after: Holding;
  /**
   * The names it set (carried or removed), as the shared name lists of the response (no list is
   * built per stream); "all" for a full-state response.
   */
  readonly touched: Touched;
}

/**
 * Every client holding of one type on one stream: the optimistic view the next push is diffed
 * against (`held`: the client accepts everything sent), what it held at its last answer
 * (`acked`), and the responses in between, so that an answer — ACK or NACK, even one that
 * arrives after a newer response went out — lands on the state it is about.
 */
export class Holdings {
  /**
   * `held` and `acked` are one object while they agree (nothing sent, or everything sent answered
   * with an ACK): every change made to both then is the same change, and sent() copies `held`
   * before it moves on alone.
   */
  held: Holding;
  acked: Holding;
  private unanswered: Unanswered[] | undefined = undefined;

  constructor() {
    this.held = new Holding();
    this.acked = this.held;
  }

  /** Records a response going out; `apply` turns what the client held into what it holds after. */
  sent(nonce: string, version: string, touched: Touched, apply: (h: Holding) => void): void {
    // An answered stream shares one Holding for both views (see answer): `held` moves on alone.
    if (this.held === this.acked) this.held = this.held.copy();
    const before = this.held.copy();
    apply(this.held);
    const entry: Unanswered = { nonce, version, before, after: this.held.copy(), touched };
    if (this.unanswered) this.unanswered.push(entry);
    else this.unanswered = [entry];
  }

  /** The unanswered response with `nonce`, if any. */
  find(nonce: string): Unanswered | undefined {
    return this.unanswered?.find((u) => u.nonce === nonce);
  }

  /**
   * The client answered the response with `nonce` (answers come in order: every earlier response
   * was answered before, or is superseded). An ACK makes its state the client's; a NACK leaves the
   * client where it was, unsure of every name the rejected response touched — in `acked`, in the
   * later responses' states and in `held`, unless a later response set that name again.
   * Returns the answered response, or undefined for a nonce not awaiting an answer.
   */
  answer(nonce: string, nacked: boolean): Unanswered | undefined {
    const list = this.unanswered;
    const at = list?.findIndex((u) => u.nonce === nonce) ?? -1;
    if (!list || at < 0) return undefined;
    const entry = list[at] as Unanswered;
    const later = list.slice(at + 1);
    this.unanswered = later.length > 0 ? later : undefined;
    if (!nacked) {
      // Nothing sent since: what the client holds now is `held` (every change to `held` since
      // this response also reached its `after`), so both views share one Holding until the next
      // response goes out (sent() copies it first): an idle stream keeps one Holding per type.
      // Otherwise the response's own `after` (no other reference to it is left) becomes `acked`.
      this.acked = later.length === 0 ? this.held : entry.after;
      return entry;
    }
    const unsure =
      entry.touched === "all"
        ? new Set([...entry.before.names(), ...entry.after.names()])
        : new Set(touchedNames(entry.touched));
    for (const name of unsure) this.acked.set(name, UNCERTAIN);
    for (const u of later) {
      if (u.touched === "all") unsure.clear();
      else for (const name of touchedNames(u.touched)) unsure.delete(name);
      for (const name of unsure) u.after.set(name, UNCERTAIN);
    }
    for (const name of unsure) this.held.set(name, UNCERTAIN);
    return entry;
  }

  /**
   * Facts the client states about itself, true whatever it answers: it does not hold `names`
   * (it unsubscribed, or re-subscribed to a name it lost).
   */
  forget(names: Iterable<string>): void {
    const all = new Set([this.held, this.acked, ...(this.unanswered ?? []).map((u) => u.after)]);
    for (const name of names) for (const h of all) h.set(name, null);
  }

  /** The client says (on a new stream) that it holds `name` at `version` (delta initial_resource_versions). */
  claim(name: string, version: string): void {
    this.held.set(name, version);
    this.acked.set(name, version);
  }

  /** The client proved (on a new stream) that it holds `set` within `scope`. */
  proven(set: ResourceSet, scope: Scope): void {
    this.held.settle(set, scope);
    this.acked.settle(set, scope);
  }

  /** Responses sent and not answered yet. */
  get pending(): number {
    return this.unanswered?.length ?? 0;
  }
}
