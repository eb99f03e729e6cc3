export function StatusBadge({ status }: { status: string }) {
  return (
    <span class={`status s-${status}`} data-status={status}>
      {status.replace('_', ' ')}
    </span>
  );
}
