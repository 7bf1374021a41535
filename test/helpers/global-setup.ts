/** Starts what the suite needs once for all files. (Redis joins here with the redis store.) */
export default function setup(): void {}
