import { useEffect, useMemo, useRef, useState } from 'react';
import { ConsoleApi } from './api.js';
import { ApiContext } from './context.js';
import { AccountPage } from './pages/AccountPage.js';
import { AuditPage } from './pages/AuditPage.js';
import { OperationsPage } from './pages/OperationsPage.js';
import { Search } from './pages/Search.js';
import { SignIn } from './pages/SignIn.js';
import { StripeInbox } from './pages/StripeInbox.js';
import { WebhooksPage } from './pages/WebhooksPage.js';
import { type Route, hrefFor, useRoute } from './router.js';
import { type OperatorKey, forgetKey, loadKey, redeemLoginFragment, saveKey } from './session.js';

type Start = { status: 'starting' } | { status: 'ready'; key: OperatorKey | undefined; message?: string | undefined };

export function App() {
  const [start, setStart] = useState<Start>({ status: 'starting' });

  useEffect(() => {
    let cancelled = false;
    const signInFromFragment = (initial: boolean) => {
      if (!initial && !/(^#|&)login=/.test(window.location.hash)) return;
      redeemLoginFragment({ location: window.location, history: window.history, fetch: (input, init) => window.fetch(input, init), store: sessionStorage })
        .then((outcome) => {
          if (cancelled) return;
          if (outcome.status === 'signed-in') setStart({ status: 'ready', key: outcome.key });
          else if (outcome.status === 'failed') {
            forgetKey(sessionStorage); // a link means "sign in as this": a refused one signs out
            setStart({ status: 'ready', key: undefined, message: outcome.message });
          }
          else if (initial) setStart({ status: 'ready', key: loadKey(sessionStorage, Date.now()) });
        });
    };
    signInFromFragment(true);
    // A login link opened in a tab already showing the console changes only the fragment.
    const onHashChange = () => signInFromFragment(false);
    window.addEventListener('hashchange', onHashChange);
    return () => {
      cancelled = true;
      window.removeEventListener('hashchange', onHashChange);
    };
  }, []);

  if (start.status === 'starting') return <main id="main"><p role="status">Signing in…</p></main>;
  if (!start.key) {
    return (
      <SignIn message={start.message} onSignedIn={(key) => { saveKey(sessionStorage, key); setStart({ status: 'ready', key }); }} />
    );
  }
  return (
    <Console operatorKey={start.key} onSignOut={(message) => { forgetKey(sessionStorage); setStart({ status: 'ready', key: undefined, message }); }} />
  );
}

const PAGES: Array<{ route: Route; label: string; matches: Route['page'][] }> = [
  { route: { page: 'search', query: '' }, label: 'Accounts', matches: ['search', 'account'] },
  { route: { page: 'audit', userId: '' }, label: 'Audit', matches: ['audit'] },
  { route: { page: 'stripe' }, label: 'Stripe inbox', matches: ['stripe'] },
  { route: { page: 'webhooks' }, label: 'Webhooks', matches: ['webhooks'] },
  { route: { page: 'operations' }, label: 'Operations', matches: ['operations'] },
];

function Console(props: { operatorKey: OperatorKey; onSignOut: (message?: string) => void }) {
  const route = useRoute();
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  const signOut = useRef(props.onSignOut);
  signOut.current = props.onSignOut;
  const api = useMemo(() => new ConsoleApi(props.operatorKey, {
    // A 401 anywhere: the key expired or was revoked; back to sign-in (a 403 stays on the page: this key may not do that).
    fetch: async (input, init) => {
      const response = await window.fetch(input, init);
      if (response.status === 401) signOut.current('The key was refused (expired or revoked): sign in again.');
      return response;
    },
  }), [props.operatorKey]);

  useEffect(() => {
    // A new page: focus its heading, as a page load would for a screen reader (not on the first render).
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.querySelector<HTMLElement>('h1')?.focus();
  }, [route]);

  useEffect(() => {
    if (route.page === 'search') document.title = 'Accounts · Billing console';
  }, [route]);

  return (
    <ApiContext.Provider value={api}>
      <a className="skip-link" href="#main" onClick={(event) => { event.preventDefault(); main.current?.focus(); }}>Skip to content</a>
      <header className="top">
        <p className="brand">Billing console</p>
        <nav aria-label="Console">
          <ul>
            {PAGES.map((page) => (
              <li key={page.label}>
                <a href={hrefFor(page.route)} {...(page.matches.includes(route.page) ? { 'aria-current': 'page' as const } : {})}>{page.label}</a>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <span className="mono" title="The admin key signing every call">{props.operatorKey.key_id}</span>
          <button type="button" onClick={() => props.onSignOut()}>Sign out</button>
        </div>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        <RoutePage route={route} />
      </main>
    </ApiContext.Provider>
  );
}

function RoutePage(props: { route: Route }) {
  const { route } = props;
  switch (route.page) {
    case 'search': return <Search key={route.query} query={route.query} />;
    case 'account': return <AccountPage key={route.userId} userId={route.userId} />;
    case 'audit': return <AuditPage key={route.userId} userId={route.userId} />;
    case 'stripe': return <StripeInbox />;
    case 'webhooks': return <WebhooksPage />;
    case 'operations': return <OperationsPage />;
    case 'not-found': return <><h1>Not found</h1><p>No console page at “{route.path}”. <a href="#/accounts">Accounts</a></p></>;
  }
}
