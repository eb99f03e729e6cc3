import { describe, expect, it } from 'vitest';
import { agentContainerOptions, containerName, workspaceMount } from '../../lib/runtime/container-spec.js';
import { demuxDockerLogs } from '../../lib/runtime/docker-logs.js';
import { LineBuffer } from '../../lib/runtime/line-buffer.js';

const frame = (stream: number, text: string): Buffer => {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header.writeUInt8(stream, 0);
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
};

describe('container names', () => {
  it('are <network>-<domain>-<first 8 chars of the id, lowercased>, or the full id when asked', () => {
    expect(containerName('dan', 'backend', '01JABCDEFGHJKMNPQRSTVWXYZ0')).toBe('dan-backend-01jabcde');
    expect(containerName('dan', 'backend', '01JABCDEFGHJKMNPQRSTVWXYZ0', true)).toBe('dan-backend-01jabcdefghjkmnpqrstvwxyz0');
    expect(containerName('dan', 'Web UI', 'abc')).toBe('dan-web-ui-abc');
  });
});

describe('workspace mounts', () => {
  it('treat an absolute path as a bind and a name as a volume, and refuse anything else', () => {
    expect(workspaceMount('/srv/ws')).toEqual({ Type: 'bind', Source: '/srv/ws', Target: '/workspace' });
    expect(workspaceMount('dan-workspace')).toEqual({ Type: 'volume', Source: 'dan-workspace', Target: '/workspace' });
    expect(() => workspaceMount('./workspace')).toThrow(/neither a volume name nor an absolute path/);
  });
});

describe('templates in agent containers', () => {
  const settings = { network: 'dan', installation: 'i1', image: 'dan-agent:latest', agentRedisUrl: 'redis://redis:6379', workspaceVolume: '/srv/ws', memoryMb: 1024, cpus: 0.5, pidsLimit: 512 };
  const spec = { agentId: 'data-1', role: 'domain' as const, domain: 'data', env: {} };

  it('with DAN_TEMPLATES_VOLUME, mount that host folder read-only at /templates and point DAN_TEMPLATES at it', () => {
    const options = agentContainerOptions({ ...settings, templatesVolume: '/srv/repo/agents' }, spec, 'dan-data-1');
    expect(options.HostConfig?.Mounts).toEqual([
      { Type: 'bind', Source: '/srv/ws', Target: '/workspace' },
      { Type: 'bind', Source: '/srv/repo/agents', Target: '/templates', ReadOnly: true },
    ]);
    expect(options.Env).toContain('DAN_TEMPLATES=/templates');
  });

  it("without it, use the image's own: the workspace is the only mount", () => {
    const options = agentContainerOptions(settings, spec, 'dan-data-1');
    expect(options.HostConfig?.Mounts).toEqual([{ Type: 'bind', Source: '/srv/ws', Target: '/workspace' }]);
    expect(options.Env?.some((e) => e.startsWith('DAN_TEMPLATES='))).toBe(false);
  });
});

describe('demuxDockerLogs', () => {
  it('joins stdout and stderr frames in the order written', () => {
    const buffer = Buffer.concat([frame(1, 'out 1\n'), frame(2, 'err 1\n'), frame(1, 'out 2\n')]);
    expect(demuxDockerLogs(buffer)).toBe('out 1\nerr 1\nout 2\n');
  });

  it('returns unframed (TTY) output as it is', () => {
    expect(demuxDockerLogs(Buffer.from('plain text output\n'))).toBe('plain text output\n');
    expect(demuxDockerLogs(Buffer.alloc(0))).toBe('');
  });
});

describe('LineBuffer', () => {
  it('keeps the last lines across chunks and streams, unfinished ones included', () => {
    const buffer = new LineBuffer(3);
    buffer.write('stdout', 'one\ntw');
    buffer.write('stderr', 'err\n');
    buffer.write('stdout', 'o\nthree\nfour\npart');
    expect(buffer.tail(10)).toBe('two\nthree\nfour\npart\n');
    expect(buffer.tail(2)).toBe('four\npart\n');
    buffer.end('stdout');
    expect(buffer.tail(10)).toBe('three\nfour\npart\n');
  });
});
