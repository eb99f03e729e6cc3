import type { DanConfig } from '../config.js';
import type { Logger } from '../log.js';
import { ensureRoleUsers, roleUrl, type Redis } from '../messaging/index.js';

/**
 * Creates or updates the network's Redis role users (lib/messaging/redis-acl.ts) with this orchestrator's admin
 * connection and returns the configuration with `agentRedisUrl` as the agent role's. A Redis without a password,
 * or one without ACL, leaves it as it was, and the log says what isolation that leaves (docs/SECURITY.md).
 */
export async function withAgentRole(admin: Redis, config: DanConfig, logger: Logger): Promise<DanConfig> {
  const setup = await ensureRoleUsers(admin, config.redisUrl, config.network);
  switch (setup.kind) {
    case 'set': {
      const agentRedisUrl = roleUrl(config.agentRedisUrl, config.redisUrl, config.network, 'agent')!;
      logger.info({ users: setup.users }, 'redis roles: agents connect as their own ACL user, without admin commands');
      return { ...config, agentRedisUrl };
    }
    case 'no-password':
      logger.warn('redis roles: Redis has no password, so there are no users to separate: agents use the same connection as the orchestrator');
      return config;
    case 'no-acl':
      logger.warn({ why: setup.reason }, 'redis roles: cannot create ACL users; agents use the orchestrator\'s credential');
      return config;
  }
}
