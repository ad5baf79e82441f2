//! InfluxDB line protocol, written into one growing buffer.
//!
//! ```text
//! meter,fleet=acme,meter=engine_hours,vehicle=TRK-001 raw=1234.5,value=1234.5 1772323200000000000
//! └─┬─┘ └──────────────────┬────────────────────────┘ └──────────┬─────────┘ └────────┬────────┘
//! measurement       tags (key=value, sorted)               fields             time (ns)
//! ```
//!
//! Why not `influxdb2::models::DataPoint`: its builder allocates a `String`
//! per name and value and two `BTreeMap`s per point (every line the sink
//! writes goes through here); it writes a non-finite float as
//! `NaN`/`inf`, which the server refuses together with the whole batch; it
//! writes an empty tag value (also refused); and it leaves a backslash or a
//! newline in a name or tag value as it is, which can escape the next
//! separator or end the line. Here every point is written straight into the
//! batch buffer, a non-finite field is left out (and a point without fields
//! is not written), an empty tag is left out, and the text is made safe as
//! described at [`Point::tag`]. The tests check that for ordinary names
//! and values the output is byte for byte what `DataPoint` writes.

use std::io::Write as _;

/// Line-protocol text of many points, and how many lines it holds.
#[derive(Default)]
pub struct LineBuf {
    buf: Vec<u8>,
    lines: usize,
}

impl std::fmt::Debug for LineBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineBuf")
            .field("bytes", &self.buf.len())
            .field("lines", &self.lines)
            .finish()
    }
}

impl LineBuf {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a point of `measurement`; nothing is kept unless
    /// [`Point::finish`] is called with at least one field written.
    pub fn point(&mut self, measurement: &str) -> Point<'_> {
        let start = self.buf.len();
        escape_into(&mut self.buf, measurement, &MEASUREMENT);
        Point {
            out: self,
            start,
            fields: 0,
        }
    }

    /// Complete lines, each ending in `\n`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn lines(&self) -> usize {
        self.lines
    }

    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// The text and line count, leaving this buffer empty.
    pub fn take(&mut self) -> (Vec<u8>, usize) {
        let lines = std::mem::take(&mut self.lines);
        (std::mem::take(&mut self.buf), lines)
    }
}

/// One point being written; see [`LineBuf::point`].
#[derive(Debug)]
pub struct Point<'a> {
    out: &'a mut LineBuf,
    /// Where this point's text starts, to take it back if it gets no field.
    start: usize,
    fields: usize,
}

impl Point<'_> {
    /// Adds a tag. Keys must come in lexical order (the server's own order,
    /// so it need not sort them). An empty value leaves the tag out (line
    /// protocol has no empty tag value). Commas, equals signs and spaces are
    /// escaped; control characters become spaces and a backslash becomes
    /// `/`: a backslash is an escape character only before some characters,
    /// and servers disagree on `\\`, so no backslash is ever written.
    pub fn tag(self, key: &str, value: &str) -> Self {
        debug_assert!(self.fields == 0, "tags come before fields");
        if value.is_empty() {
            return self;
        }
        let buf = &mut self.out.buf;
        buf.push(b',');
        escape_into(buf, key, &KEY);
        buf.push(b'=');
        escape_into(buf, value, &KEY);
        self
    }

    /// Adds a tag whose value is a number (no escaping needed).
    pub fn tag_num(self, key: &str, value: u32) -> Self {
        debug_assert!(self.fields == 0, "tags come before fields");
        let buf = &mut self.out.buf;
        buf.push(b',');
        escape_into(buf, key, &KEY);
        buf.push(b'=');
        push_int(buf, i64::from(value));
        self
    }

    /// Adds a numeric tag when there is a value.
    pub fn tag_num_opt(self, key: &str, value: Option<u32>) -> Self {
        match value {
            Some(v) => self.tag_num(key, v),
            None => self,
        }
    }

    /// Adds a float field; a NaN or infinite value leaves it out.
    pub fn field(mut self, key: &str, value: f64) -> Self {
        if !value.is_finite() {
            return self;
        }
        let buf = &mut self.out.buf;
        buf.push(if self.fields == 0 { b' ' } else { b',' });
        escape_into(buf, key, &KEY);
        buf.push(b'=');
        // `Display` of f64 is the shortest text that reads back to the same
        // value, never in exponent form: valid line protocol.
        let _ = write!(buf, "{value}");
        self.fields += 1;
        self
    }

    /// Adds a field when there is a value.
    pub fn field_opt(self, key: &str, value: Option<f64>) -> Self {
        match value {
            Some(v) => self.field(key, v),
            None => self,
        }
    }

    /// Ends the line with its time in nanoseconds since the Unix epoch.
    /// Returns false (and writes nothing) when the point has no field.
    pub fn finish(self, time_ns: i64) -> bool {
        let out = self.out;
        if self.fields == 0 {
            out.buf.truncate(self.start);
            return false;
        }
        out.buf.push(b' ');
        push_int(&mut out.buf, time_ns);
        out.buf.push(b'\n');
        out.lines += 1;
        true
    }
}

/// Appends `n` in decimal (what `write!` does, without the formatting
/// machinery: every line has a time).
fn push_int(buf: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        buf.push(b'-');
    }
    buf.extend_from_slice(&digits[at..]);
}

/// How one kind of name is escaped: the characters to escape, and a table
/// of the bytes that need any work (those, control characters, `\\`).
struct Escape {
    special: &'static [u8],
    work: [bool; 256],
}

impl Escape {
    const fn new(special: &'static [u8]) -> Self {
        let mut work = [false; 256];
        let mut i = 0;
        while i < 256 {
            work[i] = (i as u8).is_ascii_control() || i == b'\\' as usize;
            i += 1;
        }
        let mut j = 0;
        while j < special.len() {
            work[special[j] as usize] = true;
            j += 1;
        }
        Self { special, work }
    }
}

/// Measurements: commas and spaces.
static MEASUREMENT: Escape = Escape::new(b", ");
/// Tag keys and values, field keys: commas, equals signs and spaces.
static KEY: Escape = Escape::new(b",= ");

/// Appends `text` with every special byte escaped by a backslash, control
/// characters as spaces (escaped when a space is special) and backslashes
/// as `/`.
fn escape_into(buf: &mut Vec<u8>, text: &str, escape: &Escape) {
    // Names and ids seldom need any of it: one table look-up a byte.
    if !text.as_bytes().iter().any(|b| escape.work[usize::from(*b)]) {
        buf.extend_from_slice(text.as_bytes());
        return;
    }
    for &b in text.as_bytes() {
        let b = match b {
            b'\\' => b'/',
            c if c.is_ascii_control() => b' ',
            c => c,
        };
        if escape.special.contains(&b) {
            buf.push(b'\\');
        }
        buf.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use influxdb2::models::{DataPoint, WriteDataPoint};
    use proptest::prelude::*;

    fn text(buf: &LineBuf) -> &str {
        std::str::from_utf8(buf.as_bytes()).unwrap()
    }

    #[test]
    fn integers_as_write_does_them() {
        for n in [0, 7, -7, 10, 1_772_323_200_000_000_000, i64::MAX, i64::MIN] {
            let mut b = Vec::new();
            push_int(&mut b, n);
            assert_eq!(String::from_utf8(b).unwrap(), n.to_string());
        }
    }

    #[test]
    fn a_point_is_one_line() {
        let mut b = LineBuf::new();
        assert!(
            b.point("meter")
                .tag("fleet", "acme")
                .tag("vehicle", "TRK-001")
                .field("raw", 2000.0)
                .field("value", 1234.5)
                .finish(1_772_323_200_000_000_000)
        );
        assert_eq!(
            text(&b),
            "meter,fleet=acme,vehicle=TRK-001 raw=2000,value=1234.5 1772323200000000000\n"
        );
        assert_eq!(b.lines(), 1);
    }

    #[test]
    fn special_characters_are_escaped_and_made_safe() {
        let mut b = LineBuf::new();
        b.point("a b,c=d")
            .tag("k y", "v,1=2 3")
            .tag("t", "back\\slash\nnew")
            .tag_num("u", 42)
            .tag_num_opt("v", None)
            .field("f=1", 1.0)
            .finish(5);
        assert_eq!(
            text(&b),
            "a\\ b\\,c=d,k\\ y=v\\,1\\=2\\ 3,t=back/slash\\ new,u=42 f\\=1=1 5\n"
        );
    }

    #[test]
    fn empty_tags_non_finite_fields_and_fieldless_points_are_left_out() {
        let mut b = LineBuf::new();
        b.point("m").tag("model", "").field("x", 1.0).finish(1);
        assert!(
            !b.point("m")
                .tag("fleet", "acme")
                .field("x", f64::NAN)
                .field("y", f64::INFINITY)
                .field_opt("z", None)
                .finish(2)
        );
        b.point("m")
            .field("x", f64::NEG_INFINITY)
            .field("y", -0.5)
            .finish(3);
        assert_eq!(text(&b), "m x=1 1\nm y=-0.5 3\n");
        assert_eq!(b.lines(), 2);
        let (bytes, lines) = b.take();
        assert_eq!((bytes.len(), lines, b.is_empty()), (19, 2, true));
    }

    fn data_point(m: &str, tags: &[(String, String)], fields: &[(String, f64)], ts: i64) -> String {
        let mut p = DataPoint::builder(m);
        for (k, v) in tags {
            p = p.tag(k.as_str(), v.as_str());
        }
        for (k, v) in fields {
            p = p.field(k.as_str(), *v);
        }
        let mut out = Vec::new();
        p.timestamp(ts)
            .build()
            .unwrap()
            .write_data_point_to(&mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    // Names and values as the crate handles them correctly: printable,
    // no backslash, non-empty; floats finite.
    const NAME: &str = "[ -\\[\\]-~]{1,12}";

    proptest! {
        #[test]
        fn same_text_as_the_influxdb2_crate(
            m in NAME,
            tags in proptest::collection::btree_map(NAME, NAME, 0..4),
            fields in proptest::collection::btree_map(NAME, -1e15f64..1e15, 1..4),
            ts in any::<i64>(),
        ) {
            let tags: Vec<(String, String)> = tags.into_iter().collect();
            let fields: Vec<(String, f64)> = fields.into_iter().collect();
            let mut b = LineBuf::new();
            let mut p = b.point(&m);
            for (k, v) in &tags {
                p = p.tag(k, v);
            }
            for (k, v) in &fields {
                p = p.field(k, *v);
            }
            prop_assert!(p.finish(ts));
            prop_assert_eq!(text(&b), data_point(&m, &tags, &fields, ts));
        }

        #[test]
        fn any_text_stays_on_one_line(m in any::<String>(), k in any::<String>(), v in any::<String>(), x in any::<f64>()) {
            let mut b = LineBuf::new();
            let written = b.point(&m).tag(&k, &v).field("x", x).finish(0);
            prop_assert_eq!(written, x.is_finite());
            let t = text(&b);
            prop_assert_eq!(t.matches('\n').count(), usize::from(written));
            // Every backslash escapes a separator; none stands alone.
            let escapes_ok = t.split('\\').skip(1).all(|rest| rest.starts_with([',', '=', ' ']));
            prop_assert!(escapes_ok, "{t:?}");
            prop_assert!(!t.contains('\r'));
        }
    }
}
