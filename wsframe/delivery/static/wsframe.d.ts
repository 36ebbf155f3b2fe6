// Type definitions for wsframe.js, the browser client of wsframe.v1 (docs/protocol.md).
// Served next to it by `wsframe serve` at /wsframe.d.ts.

export declare const SUBPROTOCOL: "wsframe.v1";
/** The close code of a connection whose session another connection resumed (§4.5);
 *  the client then starts a new session. */
export declare const SESSION_TAKEN: 4409;

/** Backoff between reconnects, in milliseconds: wait random(0, min(max, initial * factor^attempt)),
 *  the attempt count reset once a connection has stayed open for resetAfter (§5.5). */
export interface BackoffPolicy {
  initial: number;
  factor: number;
  max: number;
  resetAfter: number;
}

/** Where the session, room positions and outbox are kept (sessionStorage by default). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface WsFrameOptions {
  /** Where to keep the session, positions and outbox; null: memory only. Default sessionStorage. */
  storage?: StorageLike | null;
  /** The storage key; default "wsframe.v1 " + the WebSocket URL. */
  storageKey?: string | null;
  /** More subprotocols to offer after "wsframe.v1". */
  protocols?: string[];
  /** Milliseconds before the first resend of an unacknowledged message (5000); doubled on each attempt. */
  ackTimeout?: number;
  /** Sends of one message before it is reported "failed" (5). */
  maxAttempts?: number;
  /** Bytes of unacknowledged messages; send() throws OutboxFullError past it (1 MiB). */
  maxOutboxBytes?: number;
  /** Milliseconds of silence before a ping; null: the welcome's keepalive. Dead after 2x. */
  keepalive?: number | null;
  /** Milliseconds from starting a connection to its welcome before giving it up (10000). */
  connectTimeout?: number;
  backoff?: Partial<BackoffPolicy>;
  /** A source of numbers in [0, 1) for the jitter (Math.random). */
  random?: () => number;
}

/** A room's position: the epoch of its history and the last offset this client has. */
export interface Position {
  epoch: string;
  offset: number;
}

export interface OpenDetail { session: string; resumed: boolean; node: string | null; keepalive: number; }
/** A publication (room set, with its epoch and offset) or a direct message (room null). */
export interface MessageDetail {
  room: string | null;
  epoch?: string;
  offset?: number;
  data: unknown;
}
export interface AckDetail { id: string; message: Record<string, unknown>; duplicate: boolean; attempts: number; }
export interface FailedDetail { id: string; message: Record<string, unknown>; attempts: number; reason: string; }
export interface AttemptDetail { id: string; attempt: number; message: Record<string, unknown>; }
export interface JoinedDetail { room: string; epoch: string; offset: number; }
export interface RecoveredDetail { room: string; epoch: string; offset: number; replayed: number; }
export interface DiscontinuityDetail {
  room: string;
  epoch: string;
  offset: number;
  reason: "epoch" | "trimmed" | string;
  /** How many publications were skipped when known (same epoch, "trimmed"); null otherwise. */
  missed: number | null;
  previous: Position | null;
}
export interface GapDetail { room: string; expected: number; got: number; }
/** code: the WebSocket close code, or this client's own reason for dropping it:
 *  4409 (from the server) the session was resumed by another connection (§4.5),
 *  4000 reconnect() called, 4001 wsframe.v1 not selected, 4002 no welcome within
 *  connectTimeout, 4003 nothing received for 2 x keepalive, 4004 a gap in a room,
 *  4005 the browser refused to start the connection.
 *  reconnectIn: milliseconds until the next attempt; null after close(). */
export interface CloseDetail { code: number; reason: string; wasOpen?: boolean; reconnectIn: number | null; }
/** Every text frame, as sent ("out") or received ("in"): for wire views and debugging. */
export interface FrameDetail { direction: "in" | "out"; text: string; }

export interface WsFrameEventMap {
  open: CustomEvent<OpenDetail>;
  message: CustomEvent<MessageDetail>;
  ack: CustomEvent<AckDetail>;
  failed: CustomEvent<FailedDetail>;
  attempt: CustomEvent<AttemptDetail>;
  joined: CustomEvent<JoinedDetail>;
  recovered: CustomEvent<RecoveredDetail>;
  discontinuity: CustomEvent<DiscontinuityDetail>;
  gap: CustomEvent<GapDetail>;
  close: CustomEvent<CloseDetail>;
  frame: CustomEvent<FrameDetail>;
}

/** Raised by send() when the outbox would pass maxOutboxBytes. */
export declare class OutboxFullError extends Error {}

export declare class WsFrame extends EventTarget {
  /** Connects at once; a relative URL (e.g. "/track/42") is taken from this page's host. */
  constructor(url: string, options?: WsFrameOptions);
  readonly url: string;
  /** The welcome's node: which server process answered. */
  readonly node: string | null;
  readonly resumed: boolean;
  /** The WebSocket extensions in use, e.g. "permessage-deflate; ...". */
  readonly extensions: string;
  /** Milliseconds between pings on this connection. */
  readonly keepalive: number | null;
  readonly counts: { connections: number; reconnects: number; gaps: number; acked: number; failed: number };
  readonly session: string | null;
  readonly rooms: Record<string, Position>;
  readonly connected: boolean;
  readonly pending: number;
  readonly outboxBytes: number;
  on<K extends keyof WsFrameEventMap>(type: K, listener: (event: WsFrameEventMap[K]) => void): this;
  addEventListener<K extends keyof WsFrameEventMap>(type: K, listener: (event: WsFrameEventMap[K]) => void,
                                                    options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
                   options?: boolean | AddEventListenerOptions): void;
  /** Send an acknowledged message; returns its id (given, or made up). */
  send(message: Record<string, unknown>): string;
  /** Send a message without an id (no ack); false when not connected. */
  post(message: Record<string, unknown>): boolean;
  /** Drop the connection and connect again now. */
  reconnect(): void;
  /** Close for good (storage kept for a later resume). */
  close(code?: number, reason?: string): void;
}

export declare function connect(url: string, options?: WsFrameOptions): WsFrame;
export declare function nextDelay(state: { attempt: number; openedAt: number | null }, now: number,
                                  random?: () => number, policy?: BackoffPolicy): number;
