/**
 * A Server-Sent Events parser (the WHATWG event-stream format), fed text as it arrives: it
 * returns the `data` of each event completed by the chunk. Only `data` lines matter here (the
 * billing stream sends no `event`, `id` or `retry`); comments (`:`) are skipped.
 */

/** One event's data may not grow past this (a balance is a few KB): a bound against a broken stream. */
export const MAX_EVENT_CHARS = 1_048_576;

export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private dataChars = 0;

  /** The data of every event this chunk completes, in order. */
  push(chunk: string): string[] {
    this.buffer += chunk;
    const events: string[] = [];
    for (;;) {
      const end = lineEnd(this.buffer);
      if (end === undefined) break;
      const line = this.buffer.slice(0, end.index);
      this.buffer = this.buffer.slice(end.index + end.length);
      const complete = this.line(line);
      if (complete !== undefined) events.push(complete);
    }
    if (this.buffer.length > MAX_EVENT_CHARS) throw new Error('event stream: a line longer than allowed');
    return events;
  }

  private line(line: string): string | undefined {
    if (line === '') {
      if (this.data.length === 0) return undefined;
      const event = this.data.join('\n');
      this.data = [];
      this.dataChars = 0;
      return event;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    if (field !== 'data') return undefined;
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    this.dataChars += value.length;
    if (this.dataChars > MAX_EVENT_CHARS) throw new Error('event stream: an event larger than allowed');
    this.data.push(value);
    return undefined;
  }
}

/** Where the first line ends (\r\n, \n or \r); a \r at the very end may still be half of \r\n. */
function lineEnd(text: string): { index: number; length: number } | undefined {
  const newline = text.indexOf('\n');
  const carriage = text.indexOf('\r');
  if (carriage !== -1 && (newline === -1 || carriage < newline)) {
    if (carriage === text.length - 1) return undefined;
    return { index: carriage, length: text[carriage + 1] === '\n' ? 2 : 1 };
  }
  return newline === -1 ? undefined : { index: newline, length: 1 };
}
