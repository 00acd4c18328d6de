import { type FormEvent, type ReactNode, useId, useRef, useState } from 'react';
import { describeError } from '../api.js';
import { Dialog } from './Dialog.js';

export const REASON_MAX = 500;

export interface ActionDialogProps {
  title: string;
  description?: string;
  /** The action's own fields (labelled inputs), above the reason. */
  children?: ReactNode;
  submitLabel: string;
  /** Runs the action with the reason and this dialog's idempotency key; resolves on success. */
  onSubmit: (reason: string, idempotencyKey: string) => Promise<unknown>;
  /** After success: the caller closes the dialog and refreshes its page. */
  onDone: () => void;
  onCancel: () => void;
  /** A check of the action's own fields before sending; a message stops the submit. */
  validate?: () => string | undefined;
}

/**
 * An operator action: its fields, a required reason (1..500 characters, kept in the audit trail),
 * and the API's error (its JSON body's code and message) shown in the dialog, which stays open.
 * One idempotency key per dialog: submitting again after a network error cannot act twice.
 */
export function ActionDialog(props: ActionDialogProps) {
  const reasonId = useId();
  const errorId = useId();
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const idempotencyKey = useRef(globalThis.crypto.randomUUID());
  const errorBox = useRef<HTMLParagraphElement>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const trimmed = reason.trim();
    const problem = props.validate?.() ?? (trimmed ? undefined : 'A reason is required: it goes into the audit trail.');
    if (problem) {
      setError(problem);
      queueMicrotask(() => errorBox.current?.focus());
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await props.onSubmit(trimmed, idempotencyKey.current);
      props.onDone();
    } catch (caught) {
      setError(describeError(caught));
      setBusy(false);
      queueMicrotask(() => errorBox.current?.focus());
    }
  }

  return (
    <Dialog title={props.title} onClose={props.onCancel} {...(props.description ? { description: props.description } : {})}>
      <form onSubmit={submit} noValidate>
        {props.children}
        <div className="field">
          <label htmlFor={reasonId}>Reason (required, kept in the audit trail)</label>
          <textarea
            id={reasonId}
            value={reason}
            maxLength={REASON_MAX}
            required
            aria-required="true"
            rows={3}
            onChange={(event) => setReason(event.target.value)}
            {...(error ? { 'aria-describedby': errorId, 'aria-invalid': !reason.trim() } : {})}
          />
        </div>
        {error ? (
          <p id={errorId} className="error" role="alert" tabIndex={-1} ref={errorBox}>{error}</p>
        ) : null}
        <div className="dialog-buttons">
          <button type="button" onClick={props.onCancel} disabled={busy}>Cancel</button>
          <button type="submit" className="primary" disabled={busy}>{busy ? 'Working…' : props.submitLabel}</button>
        </div>
      </form>
    </Dialog>
  );
}
