import { Worker, type Job, type JobJson, type WorkerOptions } from 'bullmq';
import type { DanConfig } from '../config.js';

/**
 * The agent's BullMQ worker. One change to BullMQ's: a job whose stored `data` is not JSON (dan never writes
 * one; a stray script or a hand edit can) is handed to the processor with data `{ unreadable: <why> }`, which
 * it drops as malformed and logs. BullMQ itself cannot load such a job: it throws before the processor runs,
 * leaves the job active, and takes it again after every stall interval, for ever.
 */
export class TaskWorker<T> extends Worker<T> {
  protected override createJob(data: JobJson, jobId: string): Job<T> {
    try {
      return super.createJob(data, jobId);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      return super.createJob({ ...data, data: JSON.stringify({ unreadable: `job data is not JSON: ${error.message}` }) }, jobId);
    }
  }
}

/**
 * How a queue worker holds a task (DESIGN.md, Two kinds of liveness): the job lock is the task's lease, lapsing
 * with its holder one heartbeat TTL after the last renewal; the stalled-job check then puts the job back. The
 * claim enforces each task's attempts, so BullMQ's own stall limit sits above them and never fails a job first.
 */
export function taskLeaseOptions(config: Pick<DanConfig, 'heartbeatTtlMs' | 'reaperMs' | 'taskAttempts'>): Pick<WorkerOptions, 'lockDuration' | 'stalledInterval' | 'maxStalledCount'> {
  return {
    lockDuration: config.heartbeatTtlMs,
    stalledInterval: Math.min(config.reaperMs, config.heartbeatTtlMs),
    maxStalledCount: config.taskAttempts + 1,
  };
}
