// Every child process the supervisor started itself and still waits on with Bun (workers, --pre-start).
// The orphan reaper (src/os/reaper.ts) must leave these to Bun's own exit tracking: reaping one of them
// behind Bun's back would lose its exit code.

const tracked = new Set<number>();

export const trackChild = (pid: number) => void tracked.add(pid);
export const untrackChild = (pid: number) => void tracked.delete(pid);
export const isTrackedChild = (pid: number) => tracked.has(pid);
