import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { UnknownDomainError } from './errors.js';
import { suggest } from './suggest.js';
import { MAIN_DOMAIN, domainNameSchema } from './task.js';

/** The folder of domain templates inside a templates dir. */
export const domainTemplatesDir = (templatesDir: string): string => path.join(templatesDir, 'domain-templates');
export const domainTemplateDir = (templatesDir: string, domain: string): string =>
  path.join(domainTemplatesDir(templatesDir), domain);
export const mainTemplateDir = (templatesDir: string): string => path.join(templatesDir, 'main-orchestrator');

/** Domains are folders: every valid folder name under `<templates>/domain-templates/` (sorted). */
export function listDomains(templatesDir: string): string[] {
  const dir = domainTemplatesDir(templatesDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && domainNameSchema.safeParse(d.name).success && d.name !== MAIN_DOMAIN)
    .map((d) => d.name)
    .sort();
}

/**
 * The domain a user means: `domain` itself when it is `main` or a template folder, else the one it names in
 * other letter case (`Backend` is `backend`: folder names are lowercase). Throws UnknownDomainError listing the
 * known ones, with the closest as "did you mean", otherwise.
 */
export function resolveDomain(templatesDir: string, domain: string, options: { allowMain?: boolean } = {}): string {
  const known = listDomains(templatesDir);
  const allowed = options.allowMain === false ? known : [MAIN_DOMAIN, ...known];
  if (allowed.includes(domain)) return domain;
  const sameLetters = allowed.find((name) => name === domain.toLowerCase());
  if (sameLetters !== undefined) return sameLetters;
  throw new UnknownDomainError(domain, allowed, suggest(domain, allowed));
}

/** Throws UnknownDomainError (listing the known ones) unless `domain` is `main` or a template folder. */
export function assertKnownDomain(templatesDir: string, domain: string, options: { allowMain?: boolean } = {}): void {
  const known = listDomains(templatesDir);
  const allowed = options.allowMain === false ? known : [MAIN_DOMAIN, ...known];
  if (!allowed.includes(domain)) throw new UnknownDomainError(domain, allowed, suggest(domain, allowed));
}
