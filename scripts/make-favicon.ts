// Writes public/favicon.ico: the app's accent-blue tile with a white bar chart, at 16 and 32 pixels.
// Drawn here rather than in an editor, so it can be changed by changing this file:
//   npx tsx scripts/make-favicon.ts
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync } from 'node:zlib';

const ACCENT = [0x1f, 0x5f, 0xbf]; // --accent of public/css/app.css
const WHITE = [0xff, 0xff, 0xff];
/** The bars, in units of the tile: left, right, top (the bottom is BARS_BOTTOM). */
const BARS = [
  [0.2, 0.34, 0.56],
  [0.43, 0.57, 0.38],
  [0.66, 0.8, 0.2],
] as const;
const BARS_BOTTOM = 0.8;
const CORNER_RADIUS = 0.2;
/** Samples per pixel along each axis, for smooth edges. */
const SUPERSAMPLING = 4;

/** The color at a point of the tile (0..1 each way, y down), or undefined outside its rounded corners. */
function colorAt(x: number, y: number): readonly number[] | undefined {
  const cx = Math.min(Math.max(x, CORNER_RADIUS), 1 - CORNER_RADIUS);
  const cy = Math.min(Math.max(y, CORNER_RADIUS), 1 - CORNER_RADIUS);
  if ((x - cx) ** 2 + (y - cy) ** 2 > CORNER_RADIUS ** 2) return undefined;
  const isBar = BARS.some(([left, right, top]) => x >= left && x < right && y >= top && y < BARS_BOTTOM);
  return isBar ? WHITE : ACCENT;
}

/** size x size RGBA pixels, rows top to bottom. */
function drawTile(size: number): Buffer {
  const pixels = Buffer.alloc(size * size * 4);
  const samples = SUPERSAMPLING * SUPERSAMPLING;
  for (let row = 0; row < size; row++) {
    for (let column = 0; column < size; column++) {
      const sum = [0, 0, 0];
      let covered = 0;
      for (let sy = 0; sy < SUPERSAMPLING; sy++) {
        for (let sx = 0; sx < SUPERSAMPLING; sx++) {
          const color = colorAt(
            (column + (sx + 0.5) / SUPERSAMPLING) / size,
            (row + (sy + 0.5) / SUPERSAMPLING) / size,
          );
          if (!color) continue;
          covered += 1;
          for (let channel = 0; channel < 3; channel++) sum[channel] = (sum[channel] ?? 0) + (color[channel] ?? 0);
        }
      }
      const offset = (row * size + column) * 4;
      for (let channel = 0; channel < 3; channel++) {
        pixels[offset + channel] = covered === 0 ? 0 : Math.round((sum[channel] ?? 0) / covered);
      }
      pixels[offset + 3] = Math.round((covered / samples) * 255);
    }
  }
  return pixels;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** An 8-bit RGBA PNG of the pixels. */
function encodePng(size: number, pixels: Buffer): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.writeUInt8(8, 8); // bits per channel
  header.writeUInt8(6, 9); // RGBA
  // Each row starts with its filter type, 0 (none).
  const rows = Buffer.alloc(size * (size * 4 + 1));
  for (let row = 0; row < size; row++)
    pixels.copy(rows, row * (size * 4 + 1) + 1, row * size * 4, (row + 1) * size * 4);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(rows, { level: 9 })),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** An ICO file holding one PNG image per size (every current browser reads PNG icons). */
export function makeFavicon(sizes: readonly number[] = [16, 32]): Buffer {
  const images = sizes.map((size) => encodePng(size, drawTile(size)));
  const directory = Buffer.alloc(6 + 16 * sizes.length);
  directory.writeUInt16LE(0, 0);
  directory.writeUInt16LE(1, 2); // an icon
  directory.writeUInt16LE(sizes.length, 4);
  let offset = directory.length;
  sizes.forEach((size, index) => {
    const entry = 6 + 16 * index;
    directory.writeUInt8(size % 256, entry); // width, 0 meaning 256
    directory.writeUInt8(size % 256, entry + 1);
    directory.writeUInt16LE(1, entry + 4); // color planes
    directory.writeUInt16LE(32, entry + 6); // bits per pixel
    directory.writeUInt32LE(images[index]?.length ?? 0, entry + 8);
    directory.writeUInt32LE(offset, entry + 12);
    offset += images[index]?.length ?? 0;
  });
  return Buffer.concat([directory, ...images]);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const target = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'public', 'favicon.ico');
  const icon = makeFavicon();
  writeFileSync(target, icon);
  console.log(`wrote ${path.relative(process.cwd(), target)} (${icon.length} bytes)`);
}
