// cluster-key-slot (the slot calculator ioredis itself uses) ships no types.
declare module 'cluster-key-slot' {
  function calculateSlot(key: string | Buffer): number;
  namespace calculateSlot {
    function generateMulti(keys: Array<string | Buffer>): number;
  }
  export default calculateSlot;
}
