import type Docker from 'dockerode';
import { translateDockerError } from './docker-client.js';

/** Task states before the container exits: an agent in one of them is not dead (AgentHandle.running). */
export const LIVE_STATES: ReadonlySet<string> = new Set(['new', 'allocated', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting', 'running']);

/** What dan reads of a Swarm task. */
export interface TaskInfo {
  ID: string;
  CreatedAt?: string;
  Status?: { State?: string; Err?: string; ContainerStatus?: { ExitCode?: number } };
}

/** The tasks of these services, by service id. */
export async function serviceTasks(docker: Docker, serviceIds: string[]): Promise<Map<string, TaskInfo[]>> {
  let tasks: Array<TaskInfo & { ServiceID: string }>;
  try {
    tasks = (await docker.listTasks({ filters: { service: serviceIds } })) as typeof tasks;
  } catch (error) {
    throw translateDockerError(docker, error, 'list service tasks');
  }
  const byService = new Map<string, TaskInfo[]>();
  for (const task of tasks) byService.set(task.ServiceID, [...(byService.get(task.ServiceID) ?? []), task]);
  return byService;
}

/** The newest task of a service, if it has one yet. */
export async function latestTask(docker: Docker, serviceId: string): Promise<TaskInfo | undefined> {
  return newest((await serviceTasks(docker, [serviceId])).get(serviceId) ?? []);
}

/** The task created last (a service of one replica that never restarts has one, but a node's loss can add one). */
export function newest(tasks: TaskInfo[]): TaskInfo | undefined {
  return [...tasks].sort((a, b) => (a.CreatedAt ?? '').localeCompare(b.CreatedAt ?? '')).at(-1);
}
