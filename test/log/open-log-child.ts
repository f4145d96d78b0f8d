// Opens a raft log in another process (as another user, or in another mount
// namespace) and prints the outcome as one JSON line.
import { LevelLogStorage } from '../../src/log/level-storage.js';

const [dir] = process.argv.slice(2);
if (dir === undefined) throw new Error('usage: open-log-child.ts DIR');
try {
  const storage = await LevelLogStorage.open(dir, { voters: ['n1', 'n2', 'n3'] });
  const lastIndex = storage.lastIndex();
  await storage.close();
  console.log(JSON.stringify({ opened: true, lastIndex }));
} catch (error) {
  console.log(JSON.stringify({ opened: false, name: (error as Error).name, message: (error as Error).message }));
}
