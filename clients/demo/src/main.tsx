import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { BillingClient } from '@billing/client';
import { App } from './App.js';
import { fetchSessionKey, loadConfig } from './session.js';
import './styles.css';

const root = createRoot(document.getElementById('root')!);
loadConfig().then(
  (config) => {
    const billing = new BillingClient({ baseUrl: config.billing_url, credentials: fetchSessionKey });
    root.render(<StrictMode><App billing={billing} config={config} /></StrictMode>);
  },
  (error: unknown) => {
    root.render(<p role="alert">The demo backend did not answer: {String(error)}</p>);
  },
);
