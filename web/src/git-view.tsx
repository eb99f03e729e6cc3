/** The record's `git` field (branch, merge state, diff stat), when the network works in git worktrees. */
interface GitFile {
  path?: string;
  file?: string;
  added?: number;
  removed?: number;
}

export function GitView({ git }: { git: unknown }) {
  if (git === null || typeof git !== 'object') return null;
  const g = git as Record<string, unknown>;
  const files = Array.isArray(g.files) ? (g.files as GitFile[]) : [];
  const scalars = Object.entries(g).filter(([, v]) => v !== null && typeof v !== 'object');
  return (
    <section class="card git">
      <h2>Git</h2>
      <dl>
        {scalars.map(([k, v]) => (
          <>
            <dt>{k}</dt>
            <dd class="mono">{String(v)}</dd>
          </>
        ))}
      </dl>
      {files.length > 0 && (
        <table>
          <thead>
            <tr>
              <th class="wide">File</th>
              <th>+</th>
              <th>−</th>
            </tr>
          </thead>
          <tbody>
            {files.map((f) => (
              <tr key={f.path ?? f.file}>
                <td class="mono wide">{f.path ?? f.file}</td>
                <td class="added">{f.added ?? '-'}</td>
                <td class="removed">{f.removed ?? '-'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
