import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { UnknownDomainError } from './errors.js';
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

/** Throws UnknownDomainError (listing the known ones) unless `domain` is `main` or a template folder. */
export function assertKnownDomain(templatesDir: string, domain: string, options: { allowMain?: boolean } = {}): void {
  const known = listDomains(templatesDir);
  if (domain === MAIN_DOMAIN && options.allowMain !== false) return;
  if (!known.includes(domain)) {
    throw new UnknownDomainError(domain, options.allowMain === false ? known : [MAIN_DOMAIN, ...known]);
  }
}
