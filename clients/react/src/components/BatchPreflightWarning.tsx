import type { BatchOperationRequest } from '@billing/client';
import { useBatchPreflight } from '../hooks.js';

export interface BatchPreflightWarningProps {
  operations: BatchOperationRequest[];
  userId?: string;
  onBuyPackage?: (key: string) => void;
}

/** Warns, before a batch starts, which operations would be refused (cumulative, in order). */
export function BatchPreflightWarning({ operations, userId, onBuyPackage }: BatchPreflightWarningProps) {
  const { warnings } = useBatchPreflight(operations, userId);
  if (warnings.length === 0) return null;
  return (
    <div role="alert" data-billing="preflight">
      <p>⚠️ Insufficient balance for {warnings.length} operation{warnings.length === 1 ? '' : 's'}</p>
      <ul>
        {warnings.map((warning, index) => {
          const pkg = warning.suggestions.find((s) => s.type === 'package' && s.key);
          return (
            <li key={`${warning.operation}-${index}`}>
              {warning.operation}: {Math.ceil(warning.deficit_seconds / 60)} min short
              {pkg?.key && onBuyPackage && (
                <> <button type="button" onClick={() => onBuyPackage(pkg.key as string)}>Buy {pkg.key}</button></>
              )}
            </li>
          );
        })}
      </ul>
    </div>
  );
}
