import { useEffect, useId, useRef, type KeyboardEvent } from 'react';
import type { InsufficientFundsError, PricingCatalog } from '@billing/client';
import { formatPrice, minutes } from '../format.js';

export interface InsufficientTimeDialogProps {
  /** The 402 (useConsume().insufficientFunds); nothing is rendered without one. */
  error: InsufficientFundsError | undefined;
  onClose: () => void;
  onBuyPackage: (key: string) => void;
  onUpgrade: (plan: string) => void;
  /** Optional: names and prices of the suggested packages and plans (prices as the server sent them). */
  catalog?: PricingCatalog;
}

const FOCUSABLE = 'button:not([disabled]), [href], input:not([disabled]), select, textarea, [tabindex]:not([tabindex="-1"])';

/**
 * The 402 dialog: the balance, daily vs paid, and the server's suggestions as "buy" / "upgrade"
 * buttons. Modal: focus moves in on open and back on close, Tab stays inside, Escape closes.
 */
export function InsufficientTimeDialog({ error, onClose, onBuyPackage, onUpgrade, catalog }: InsufficientTimeDialogProps) {
  const titleId = useId();
  const descriptionId = useId();
  const dialogRef = useRef<HTMLDivElement>(null);
  const open = error !== undefined;

  useEffect(() => {
    if (!open) return undefined;
    const previous = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    const first = dialogRef.current?.querySelector<HTMLElement>(FOCUSABLE);
    (first ?? dialogRef.current)?.focus();
    return () => { previous?.focus(); };
  }, [open]);

  if (!error) return null;

  const onKeyDown = (event: KeyboardEvent<HTMLDivElement>) => {
    if (event.key === 'Escape') {
      event.stopPropagation();
      onClose();
      return;
    }
    if (event.key !== 'Tab' || !dialogRef.current) return;
    const focusable = Array.from(dialogRef.current.querySelectorAll<HTMLElement>(FOCUSABLE));
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    if (!first || !last) return;
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  };

  const deficit = error.deficitSeconds;
  return (
    <div data-billing="dialog-backdrop" style={{ position: 'fixed', inset: 0, background: 'rgba(0,0,0,0.4)' }}>
      <div
        ref={dialogRef}
        role="dialog"
        aria-modal="true"
        aria-labelledby={titleId}
        aria-describedby={descriptionId}
        tabIndex={-1}
        onKeyDown={onKeyDown}
        style={{ background: 'white', maxWidth: 420, margin: '10vh auto', padding: 16 }}
      >
        <h2 id={titleId}>Not enough AI time</h2>
        <div id={descriptionId}>
          <p>
            You have {minutes(error.balance_seconds)} min left
            ({minutes(error.breakdown_seconds.bonus_daily)} min daily bonus, {minutes(error.breakdown_seconds.paid)} min paid)
            {deficit !== undefined && deficit > 0 && <>; this operation needs {Math.ceil(deficit / 60)} min more</>}.
          </p>
        </div>
        {error.suggestions.length > 0 && (
          <ul aria-label="Suggestions">
            {error.suggestions.map((suggestion, index) => {
              if (suggestion.type === 'package' && suggestion.key) {
                const key = suggestion.key;
                const pkg = catalog?.packages.find((p) => p.key === key);
                const label = `Buy ${pkg?.name ?? key}`;
                const mins = suggestion.minutes ?? pkg?.minutes;
                return (
                  <li key={`package-${key}-${index}`}>
                    <button type="button" onClick={() => onBuyPackage(key)}>
                      {label}{mins !== undefined && ` (${mins} min`}{pkg && catalog ? `, ${formatPrice(pkg.price, catalog.currency)}` : ''}{mins !== undefined && ')'}
                    </button>
                  </li>
                );
              }
              if (suggestion.type === 'upgrade' && suggestion.plan) {
                const plan = suggestion.plan;
                const info = catalog?.subscriptions.find((p) => p.key === plan);
                return (
                  <li key={`upgrade-${plan}-${index}`}>
                    <button type="button" onClick={() => onUpgrade(plan)}>
                      Upgrade to {info?.name ?? plan}
                    </button>
                  </li>
                );
              }
              return null;
            })}
          </ul>
        )}
        <button type="button" onClick={onClose}>Not now</button>
      </div>
    </div>
  );
}
