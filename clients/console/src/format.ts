/** Display formats of the console: seconds as the user sees minutes, instants in UTC, money. */

/** 3725 -> "1 h 2 min 5 s"; 600 -> "10 min"; 0 -> "0 s". Negative values keep their sign ("−10 min"). */
export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '—';
  const sign = seconds < 0 ? '−' : '';
  let rest = Math.abs(Math.trunc(seconds));
  const hours = Math.floor(rest / 3600);
  rest -= hours * 3600;
  const minutes = Math.floor(rest / 60);
  const secs = rest - minutes * 60;
  const parts: string[] = [];
  if (hours) parts.push(`${hours.toLocaleString('en-US')} h`);
  if (minutes) parts.push(`${minutes} min`);
  if (secs || parts.length === 0) parts.push(`${secs} s`);
  return sign + parts.join(' ');
}

/** A ledger change: "+10 min", "−20 min", "0 s" (a notice row). */
export function formatSignedSeconds(seconds: number): string {
  return seconds > 0 ? `+${formatSeconds(seconds)}` : formatSeconds(seconds);
}

/** An RFC 3339 instant as "2026-12-02 19:34:02 UTC"; absent or unreadable -> "—". */
export function formatTimestamp(value: string | null | undefined): string {
  if (!value) return '—';
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) return '—';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC');
}

/** 1299, "usd" -> "$12.99"; an unknown currency code -> "12.99 XYZ". */
export function formatCents(cents: number, currency: string): string {
  const code = currency.toUpperCase();
  try {
    return new Intl.NumberFormat('en-US', { style: 'currency', currency: code }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${code}`;
  }
}

/** A date input's "YYYY-MM-DD" as the RFC 3339 instant starting that UTC day ("" -> undefined). */
export function startOfUtcDay(date: string): string | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return undefined;
  const ms = Date.parse(`${date}T00:00:00Z`);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/** The instant ending that UTC day (the next day's start: ranges are [from, to)). */
export function endOfUtcDay(date: string): string | undefined {
  const start = startOfUtcDay(date);
  return start === undefined ? undefined : new Date(Date.parse(start) + 86_400_000).toISOString();
}

/** "package_credit" -> "Package credit". */
export function humanize(code: string): string {
  if (!code) return '—';
  const text = code.replace(/_/g, ' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}
