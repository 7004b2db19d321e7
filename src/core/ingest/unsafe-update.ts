/**
 * An update that arrived with keys that would reach an object's prototype (`__proto__`, `constructor.prototype`).
 * The transport drops those keys while it parses and hands the ingest handler this instead of the update, so the
 * update is judged `malformed` on its own and its neighbours in the batch are judged as usual.
 */
export class UnsafeUpdate {
  constructor(
    /** Why the update is refused, for the sender and the rejection record. */
    readonly detail: string,
    /** The update without the offending keys: what is stored with its rejection. */
    readonly sanitized: unknown,
  ) {}
}
