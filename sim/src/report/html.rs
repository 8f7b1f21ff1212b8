//! `report.html` beside `report.md` (and `compare.html`, `sweep.html`, `swarm.html`, `lb.html`):
//! every Markdown file of an output set rendered as one self-contained page. The plots it
//! references are inlined as SVG (no network, no JavaScript, no other file needed to read it:
//! the page can be mailed or attached to a design review); links to other Markdown files of the
//! set point at their pages; every section heading gets an anchor and the page a table of
//! contents. The Markdown is the single source: the page says exactly what `report.md` says,
//! in the same order.
//!
//! Rendering is pulldown-cmark's (CommonMark + tables); we only rewrite its events: images of
//! files in the set become inline SVG, `*.md` links become `*.html`, headings get ids.

use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// The page's style: readable widths, tables that scroll sideways instead of overflowing, plots
/// scaled to the page.
const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;line-height:1.45;color:#1b1b1b;\
max-width:1180px;margin:0 auto;padding:1rem 1.5rem 3rem}\
h1{font-size:1.6rem;margin-bottom:.3rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}\
nav{font-size:.92rem;background:#f6f7f9;border:1px solid #e2e4e8;padding:.5rem 1rem;margin:1rem 0}\
nav ol{margin:.2rem 0;padding-left:1.4rem;columns:2}\
table{border-collapse:collapse;display:block;overflow-x:auto;margin:.6rem 0;font-size:.9rem}\
th,td{border:1px solid #d6d8dc;padding:.25rem .55rem;text-align:left;vertical-align:top}\
th{background:#f0f2f5}tr:nth-child(even) td{background:#fafbfc}\
code{background:#f0f2f5;padding:0 .2rem;border-radius:3px;font-size:.88em}\
.plot{display:block;margin:1rem 0}.plot svg{max-width:100%;height:auto;border:1px solid #e2e4e8}\
.missing{color:#a00}";

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A heading's anchor: lower-case words joined by `-`, made unique with a counter.
fn slug(text: &str, used: &mut Vec<String>) -> String {
    let mut s = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            s.extend(c.to_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    let base = s.trim_end_matches('-').to_string();
    let base = if base.is_empty() { "section".to_string() } else { base };
    let mut id = base.clone();
    let mut k = 2;
    while used.contains(&id) {
        id = format!("{base}-{k}");
        k += 1;
    }
    used.push(id.clone());
    id
}

/// An SVG file's markup without its XML declaration, ready to inline.
fn inline_svg(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    let start = text.find("<svg")?;
    Some(text[start..].trim_end())
}

/// The page for one Markdown text; `resolve` returns the bytes of a file the text refers to
/// (relative to the Markdown file), if it is in the set.
pub fn page<'f>(markdown: &str, resolve: impl Fn(&str) -> Option<&'f [u8]>) -> String {
    let events: Vec<Event<'_>> = Parser::new_ext(markdown, Options::ENABLE_TABLES).collect();
    let mut out: Vec<Event<'_>> = Vec::with_capacity(events.len());
    let mut used = Vec::new();
    let mut title = String::new();
    let mut toc: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    // The text of the events from `i` (just after a start tag) up to its end tag.
    let text_until = |i: &mut usize, end: TagEnd| {
        let mut text = String::new();
        let mut inner = Vec::new();
        while *i < events.len() {
            match &events[*i] {
                Event::End(e) if *e == end => break,
                Event::Text(t) | Event::Code(t) => text.push_str(t),
                _ => {}
            }
            inner.push(events[*i].clone());
            *i += 1;
        }
        (text, inner)
    };
    while i < events.len() {
        match &events[i] {
            Event::Start(Tag::Heading { level, classes, attrs, .. }) => {
                let level = *level;
                let (classes, attrs) = (classes.clone(), attrs.clone());
                i += 1;
                let (text, inner) = text_until(&mut i, TagEnd::Heading(level));
                let id = slug(&text, &mut used);
                match level {
                    HeadingLevel::H1 if title.is_empty() => title = text.clone(),
                    HeadingLevel::H2 => toc.push((id.clone(), text.clone())),
                    _ => {}
                }
                out.push(Event::Start(Tag::Heading { level, id: Some(CowStr::from(id)), classes, attrs }));
                out.extend(inner);
                out.push(Event::End(TagEnd::Heading(level)));
                if level == HeadingLevel::H1 {
                    out.push(Event::Html(CowStr::from("<!--toc-->")));
                }
            }
            Event::Start(Tag::Image { dest_url, .. }) => {
                let dest = dest_url.to_string();
                i += 1;
                let (alt, _) = text_until(&mut i, TagEnd::Image);
                let html = match resolve(&dest).and_then(inline_svg) {
                    Some(svg) => {
                        format!("<span class=\"plot\" role=\"img\" aria-label=\"{}\">{svg}</span>", escape(&alt))
                    }
                    None => format!("<span class=\"missing\">[plot {} is not in this report]</span>", escape(&dest)),
                };
                out.push(Event::Html(CowStr::from(html)));
            }
            Event::Start(Tag::Link { link_type, dest_url, title, id }) if dest_url.ends_with(".md") => {
                let dest = format!("{}.html", dest_url.trim_end_matches(".md"));
                out.push(Event::Start(Tag::Link {
                    link_type: *link_type,
                    dest_url: CowStr::from(dest),
                    title: title.clone(),
                    id: id.clone(),
                }));
            }
            e => out.push(e.clone()),
        }
        i += 1;
    }
    let mut body = String::new();
    pulldown_cmark::html::push_html(&mut body, out.into_iter());
    let nav = if toc.len() < 2 {
        String::new()
    } else {
        let items: String =
            toc.iter().map(|(id, text)| format!("<li><a href=\"#{id}\">{}</a></li>", escape(text))).collect();
        format!("<nav><strong>Contents</strong><ol>{items}</ol></nav>\n")
    };
    let body = body.replacen("<!--toc-->", &nav, 1);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(&title)
    )
}

/// Adds a page `X.html` for every `X.md` of an output set (names are paths inside the set,
/// `/`-separated; a page resolves its plots relative to its own folder).
pub fn add_pages(files: &mut Vec<(String, Vec<u8>)>) {
    let mut pages = Vec::new();
    for (name, bytes) in files.iter() {
        let Some(stem) = name.strip_suffix(".md") else { continue };
        let Ok(text) = std::str::from_utf8(bytes) else { continue };
        let dir = name.rfind('/').map_or("", |k| &name[..=k]);
        let html = page(text, |rel| {
            let path = format!("{dir}{rel}");
            files.iter().find(|(n, _)| *n == path).map(|(_, b)| b.as_slice())
        });
        pages.push((format!("{stem}.html"), html.into_bytes()));
    }
    files.extend(pages);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_inlines_its_plots_links_pages_and_lists_its_sections() {
        let svg = b"<?xml version=\"1.0\"?>\n<svg width=\"10\" height=\"10\"><rect/></svg>\n".to_vec();
        let mut files = vec![
            ("v/report.md".to_string(), b"# T & co\n\n## A b\n\n![the plot](p.svg)\n\n## A b\n\n| x | y |\n|---|---|\n| 1 | 2 |\n\n[other](../c.md) ![gone](q.svg)\n".to_vec()),
            ("v/p.svg".to_string(), svg),
        ];
        add_pages(&mut files);
        assert_eq!(files.len(), 3);
        assert_eq!(files[2].0, "v/report.html");
        let html = String::from_utf8(files[2].1.clone()).expect("utf-8");
        assert!(html.contains("<title>T &amp; co</title>"), "{html}");
        assert!(html.contains("<span class=\"plot\" role=\"img\" aria-label=\"the plot\"><svg width=\"10\""), "{html}");
        assert!(!html.contains("<?xml"), "the declaration is dropped: {html}");
        assert!(html.contains("<h2 id=\"a-b\">") && html.contains("<h2 id=\"a-b-2\">"), "{html}");
        assert!(html.contains("<li><a href=\"#a-b\">A b</a></li>"), "{html}");
        assert!(html.contains("<td>2</td>"), "tables: {html}");
        assert!(html.contains("href=\"../c.html\""), "{html}");
        assert!(html.contains("[plot q.svg is not in this report]"), "{html}");
        assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"), "{html}");
    }
}
