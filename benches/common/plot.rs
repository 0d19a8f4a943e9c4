//! A small PNG line chart without dependencies: no font files (a built-in 5×7 pixel font), no image crate (stored,
//! uncompressed deflate blocks). Enough for the scale suite's figures of RSS and time to ready against the number of
//! Secrets.

#![allow(dead_code)] // each bench binary uses part of it

/// One line of points (x, y), drawn in `color`.
pub struct Series {
    pub name: String,
    pub color: [u8; 3],
    pub points: Vec<(f64, f64)>,
}

/// One panel: a title, a logarithmic x axis, a linear y axis from 0, its series and optional horizontal lines
/// (a target: value, label).
pub struct Panel {
    pub title: String,
    pub series: Vec<Series>,
    pub lines: Vec<(f64, String)>,
}

const PANEL_W: usize = 480;
const H: usize = 360;
const LEFT: usize = 60;
const RIGHT: usize = 20;
const TOP: usize = 40;
const BOTTOM: usize = 60;

struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        Self { width, height, pixels: vec![255; width * height * 3] }
    }

    fn set(&mut self, x: i64, y: i64, color: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = (y as usize * self.width + x as usize) * 3;
            self.pixels[i..i + 3].copy_from_slice(&color);
        }
    }

    fn rect(&mut self, x: i64, y: i64, w: i64, h: i64, color: [u8; 3]) {
        for dy in 0..h {
            for dx in 0..w {
                self.set(x + dx, y + dy, color);
            }
        }
    }

    /// A line `thickness` pixels wide (Bresenham, each point a square).
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), color: [u8; 3], thickness: i64) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.rect(x - thickness / 2, y - thickness / 2, thickness, thickness, color);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Text in the 5×7 font, `scale` pixels per font pixel, from its top-left corner.
    fn text(&mut self, x: i64, y: i64, text: &str, color: [u8; 3], scale: i64) {
        for (i, c) in text.chars().enumerate() {
            let rows = glyph(c.to_ascii_uppercase());
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        let gx = x + (i as i64 * 6 + col) * scale;
                        self.rect(gx, y + r as i64 * scale, scale, scale, color);
                    }
                }
            }
        }
    }
}

fn text_width(text: &str, scale: i64) -> i64 {
    text.chars().count() as i64 * 6 * scale
}

/// 5×7 glyphs (one byte per row, the low five bits); unknown characters are blank.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        ',' => [0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '<' => [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '/' => [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        _ => [0; 7],
    }
}

/// A round step for about `count` ticks from 0 to `max`.
fn tick_step(max: f64, count: f64) -> f64 {
    let raw = max / count;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude)
}

fn short_number(v: f64) -> String {
    if v >= 1000.0 && (v / 1000.0).fract() == 0.0 {
        format!("{}K", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn draw_panel(canvas: &mut Canvas, x0: i64, panel: &Panel) {
    let black = [0, 0, 0];
    let grey = [210, 210, 210];
    let (pw, ph) = ((PANEL_W - LEFT - RIGHT) as i64, (H - TOP - BOTTOM) as i64);
    let (left, top) = (x0 + LEFT as i64, TOP as i64);
    canvas.text(x0 + (PANEL_W as i64 - text_width(&panel.title, 2)) / 2, 10, &panel.title, black, 2);

    let points = panel.series.iter().flat_map(|s| s.points.iter());
    let (mut xmin, mut xmax, mut ymax) = (f64::MAX, f64::MIN, 0f64);
    for &(x, y) in points {
        xmin = xmin.min(x);
        xmax = xmax.max(x);
        ymax = ymax.max(y);
    }
    for (y, _) in &panel.lines {
        ymax = ymax.max(*y);
    }
    if xmin > xmax {
        (xmin, xmax) = (1000.0, 100_000.0);
    }
    // Whole decades on x, from the one below the smallest point to the one above the largest.
    let (dmin, mut dmax) = (xmin.log10().floor(), xmax.log10().ceil());
    if dmax <= dmin {
        dmax = dmin + 1.0;
    }
    let step = tick_step(ymax.max(1e-9) * 1.1, 5.0);
    let ytop = (ymax * 1.1 / step).ceil() * step;
    let px = |x: f64| left + ((x.log10() - dmin) / (dmax - dmin) * pw as f64).round() as i64;
    let py = |y: f64| top + ph - (y / ytop * ph as f64).round() as i64;

    let mut tick = 0.0;
    while tick <= ytop + step / 2.0 {
        let y = py(tick);
        canvas.line((left, y), (left + pw, y), grey, 1);
        let label = short_number((tick * 1000.0).round() / 1000.0);
        canvas.text(left - 6 - text_width(&label, 1), y - 3, &label, black, 1);
        tick += step;
    }
    let mut decade = dmin;
    while decade <= dmax {
        let x = px(10f64.powf(decade));
        canvas.line((x, top), (x, top + ph), grey, 1);
        let label = short_number(10f64.powf(decade));
        canvas.text(x - text_width(&label, 1) / 2, top + ph + 6, &label, black, 1);
        decade += 1.0;
    }
    canvas.line((left, top), (left, top + ph), black, 1);
    canvas.line((left, top + ph), (left + pw, top + ph), black, 1);
    let axis = "PULL SECRETS (LOG SCALE)";
    canvas.text(left + (pw - text_width(axis, 1)) / 2, top + ph + 20, axis, black, 1);

    for (value, label) in &panel.lines {
        let y = py(*value);
        let mut x = left;
        while x < left + pw {
            canvas.line((x, y), ((x + 6).min(left + pw), y), [200, 0, 0], 1);
            x += 12;
        }
        canvas.text(left + pw - text_width(label, 1) - 2, y - 10, label, [200, 0, 0], 1);
    }
    for (i, series) in panel.series.iter().enumerate() {
        let mut points: Vec<(i64, i64)> = series.points.iter().map(|&(x, y)| (px(x), py(y))).collect();
        points.sort();
        for pair in points.windows(2) {
            canvas.line(pair[0], pair[1], series.color, 2);
        }
        for &(x, y) in &points {
            canvas.rect(x - 3, y - 3, 7, 7, series.color);
        }
        // Legend below the axis label.
        let lx = left + i as i64 * 150;
        canvas.rect(lx, top + ph + 38, 14, 7, series.color);
        canvas.text(lx + 20, top + ph + 38, &series.name, black, 1);
    }
}

/// The panels side by side, as PNG bytes.
pub fn png(panels: &[Panel]) -> Vec<u8> {
    let mut canvas = Canvas::new(PANEL_W * panels.len().max(1), H);
    for (i, panel) in panels.iter().enumerate() {
        draw_panel(&mut canvas, (i * PANEL_W) as i64, panel);
    }
    encode_png(canvas.width, canvas.height, &canvas.pixels)
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// 8-bit RGB, no filter, zlib with stored blocks.
fn encode_png(width: usize, height: usize, rgb: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity((width * 3 + 1) * height);
    for row in rgb.chunks(width * 3) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        zlib.extend_from_slice(&(block.len() as u16).to_le_bytes());
        zlib.extend_from_slice(&(!(block.len() as u16)).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + byte as u32) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());

    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&(width as u32).to_be_bytes());
    header.extend_from_slice(&(height as u32).to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}
