import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { BillingApiError } from '@billing/client';
import { ActionDialog } from '../src/components/ActionDialog.js';

afterEach(cleanup);

function setup(onSubmit: (reason: string, key: string) => Promise<unknown>) {
  const onDone = vi.fn();
  const onCancel = vi.fn();
  const opener = document.createElement('button');
  opener.textContent = 'Open';
  document.body.append(opener);
  opener.focus();
  const view = render(
    <ActionDialog title="Grant minutes" submitLabel="Grant" onSubmit={onSubmit} onDone={onDone} onCancel={onCancel}>
      <label htmlFor="m">Minutes</label><input id="m" defaultValue="10" />
    </ActionDialog>,
  );
  return { onDone, onCancel, opener, view };
}

describe('an action dialog', () => {
  test('is a labelled modal dialog with focus on its first field', () => {
    setup(async () => undefined);
    const dialog = screen.getByRole('dialog', { name: 'Grant minutes' });
    expect(dialog.getAttribute('aria-modal')).toBe('true');
    expect(document.activeElement).toBe(screen.getByLabelText('Minutes'));
  });

  test('refuses to act without a reason', async () => {
    const onSubmit = vi.fn(async () => undefined);
    setup(onSubmit);
    fireEvent.click(screen.getByRole('button', { name: 'Grant' }));
    expect((await screen.findByRole('alert')).textContent).toMatch(/reason is required/);
    expect(onSubmit).not.toHaveBeenCalled();
  });

  test('sends the trimmed reason with one idempotency key, the same on a second try after an error; shows the API\'s error', async () => {
    const keys: string[] = [];
    let fail = true;
    const { onDone } = setup(async (reason, key) => {
      keys.push(key);
      expect(reason).toBe('customer outage');
      if (fail) {
        fail = false;
        throw new BillingApiError({ code: 'FAILED_PRECONDITION', status: 409, message: 'the balance would go below zero' });
      }
    });
    fireEvent.change(screen.getByLabelText(/Reason/), { target: { value: '  customer outage ' } });
    fireEvent.click(screen.getByRole('button', { name: 'Grant' }));
    expect((await screen.findByRole('alert')).textContent).toBe('FAILED_PRECONDITION: the balance would go below zero');
    expect(onDone).not.toHaveBeenCalled();
    fireEvent.click(screen.getByRole('button', { name: 'Grant' }));
    await waitFor(() => expect(onDone).toHaveBeenCalledOnce());
    expect(keys).toHaveLength(2);
    expect(keys[0]).toBe(keys[1]);
  });

  test('Escape cancels and focus goes back to the opener', () => {
    const { onCancel, opener, view } = setup(async () => undefined);
    fireEvent.keyDown(screen.getByRole('dialog'), { key: 'Escape' });
    expect(onCancel).toHaveBeenCalledOnce();
    view.unmount();
    expect(document.activeElement).toBe(opener);
  });

  test('Tab from the last control wraps to the first (focus stays in the dialog)', () => {
    setup(async () => undefined);
    const grant = screen.getByRole('button', { name: 'Grant' });
    grant.focus();
    fireEvent.keyDown(screen.getByRole('dialog'), { key: 'Tab' });
    expect(document.activeElement).toBe(screen.getByLabelText('Minutes'));
  });
});
