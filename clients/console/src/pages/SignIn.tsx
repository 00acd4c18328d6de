import { type FormEvent, useEffect, useId, useRef, useState } from 'react';
import { ConsoleApi, describeError, isAuthFailure } from '../api.js';
import { type OperatorKey, parsePastedKey } from '../session.js';

/**
 * Sign-in with an admin key (key id + secret, pasted), checked with one signed admin read before it
 * is kept; or the one-time link of `billing console-login`, which the app redeems by itself.
 */
export function SignIn(props: { onSignedIn: (key: OperatorKey) => void; message?: string | undefined }) {
  const keyIdField = useId();
  const secretField = useId();
  const [keyId, setKeyId] = useState('');
  const [secret, setSecret] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    document.title = 'Sign in · Billing console';
    heading.current?.focus();
  }, []);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const parsed = parsePastedKey(keyId, secret);
    if (typeof parsed === 'string') {
      setError(parsed);
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await new ConsoleApi(parsed).webhookEndpoints(); // an admin-only read: proves the key before keeping it
      props.onSignedIn(parsed);
    } catch (caught) {
      setError(isAuthFailure(caught)
        ? 'This key was refused: it must be a live admin key (a user or service key gets 403).'
        : describeError(caught));
      setBusy(false);
    }
  }

  return (
    <main id="main" className="sign-in">
      <h1 tabIndex={-1} ref={heading}>Billing console</h1>
      <p>
        Sign in with an admin key, or run <code>billing console-login</code> on the server and open the
        one-time link it prints. The key stays in this tab only (closing it signs you out).
      </p>
      {props.message ? <p className="error" role="alert">{props.message}</p> : null}
      <form onSubmit={submit} aria-label="Sign in with an admin key" noValidate>
        <div className="field">
          <label htmlFor={keyIdField}>Admin key id</label>
          <input id={keyIdField} name="key_id" autoComplete="off" spellCheck={false} value={keyId}
            onChange={(event) => setKeyId(event.target.value)} required aria-required="true" />
        </div>
        <div className="field">
          <label htmlFor={secretField}>Secret</label>
          <input id={secretField} name="secret" type="password" autoComplete="off" spellCheck={false} value={secret}
            onChange={(event) => setSecret(event.target.value)} required aria-required="true" />
        </div>
        {error ? <p className="error" role="alert">{error}</p> : null}
        <button type="submit" className="primary" disabled={busy}>{busy ? 'Checking…' : 'Sign in'}</button>
      </form>
    </main>
  );
}
