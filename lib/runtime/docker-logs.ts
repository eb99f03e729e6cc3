/**
 * Decodes a Docker log buffer. Without a TTY the engine multiplexes stdout and stderr in frames of an
 * 8-byte header (stream type, three zero bytes, big-endian payload length) and the payload; frames are
 * kept in the order the engine wrote them. A buffer that is not framed (a TTY container) is returned as is.
 */
export function demuxDockerLogs(buffer: Buffer): string {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const stream = buffer.readUInt8(offset);
    const framed = stream <= 2 && buffer.readUInt8(offset + 1) === 0 && buffer.readUInt16BE(offset + 2) === 0;
    if (!framed) break;
    const length = buffer.readUInt32BE(offset + 4);
    parts.push(buffer.subarray(offset + 8, Math.min(offset + 8 + length, buffer.length)));
    offset += 8 + length;
  }
  if (offset === 0 && buffer.length > 0) return buffer.toString('utf8');
  if (offset < buffer.length) parts.push(buffer.subarray(offset));
  return Buffer.concat(parts).toString('utf8');
}
