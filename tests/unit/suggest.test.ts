import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assertKnownDomain, resolveDomain } from '../../lib/domains.js';
import { UnknownDomainError } from '../../lib/errors.js';
import { editDistance, suggest } from '../../lib/suggest.js';

const templates = mkdtempSync(path.join(os.tmpdir(), 'dan-suggest-'));
for (const d of ['backend', 'frontend', 'devops']) mkdirSync(path.join(templates, 'domain-templates', d), { recursive: true });
afterAll(() => rmSync(templates, { recursive: true, force: true }));

describe('did you mean', () => {
  it('measures edits, a swap of neighbours counting as one', () => {
    expect(editDistance('backend', 'backend')).toBe(0);
    expect(editDistance('bakend', 'backend')).toBe(1);
    expect(editDistance('bcakend', 'backend')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('suggests the closest known names, and nothing for a word unlike any', () => {
    const known = ['main', 'backend', 'frontend', 'devops'];
    expect(suggest('bakend', known)).toEqual(['backend']);
    expect(suggest('frontnd', known)).toEqual(['frontend']);
    expect(suggest('devop', known)).toEqual(['devops']);
    expect(suggest('Backend', known)).toEqual(['backend']);
    expect(suggest('kubernetes', known)).toEqual([]);
  });

  it('a mistyped domain is bad input naming the closest domain and every known one', () => {
    const error = (() => {
      try {
        resolveDomain(templates, 'bakend');
      } catch (e) {
        return e as UnknownDomainError;
      }
      throw new Error('no error');
    })();
    expect(error).toBeInstanceOf(UnknownDomainError);
    expect(error.message).toBe('unknown domain "bakend" (did you mean backend?): known domains are main, backend, devops, frontend');
    expect(() => resolveDomain(templates, 'warehouse')).toThrow('unknown domain "warehouse": known domains are main, backend, devops, frontend');
  });

  it('domains are case-insensitive on the command line: Backend is backend', () => {
    expect(resolveDomain(templates, 'Backend')).toBe('backend');
    expect(resolveDomain(templates, 'MAIN')).toBe('main');
    expect(() => resolveDomain(templates, 'MAIN', { allowMain: false })).toThrow(UnknownDomainError);
    // An agent's own domain must be the folder's exact name; the error says which one.
    expect(() => assertKnownDomain(templates, 'Backend', { allowMain: false })).toThrow('unknown domain "Backend" (did you mean backend?)');
  });
});
