"""web_fetch's HTML to text: the title, readable text with headings and lists, no scripts or styles."""

import time

import pytest

from runner.tools.web_fetch import html_to_text


def test_a_page_becomes_its_title_and_its_text_with_headings_and_list_items():
    html = (
        "<html><head><title> Hi there </title><style>p { color: red }</style></head>"
        "<body><h1>Title</h1><p>First   para.</p><ul><li>one</li><li>two</li></ul></body></html>"
    )
    assert html_to_text(html) == ("Hi there", "# Title\n\nFirst para.\n\n- one\n\n- two")


@pytest.mark.parametrize(("tag", "mark"), [("h1", "# "), ("h2", "## "), ("h3", "### "), ("h4", ""), ("h6", "")])
def test_headings_one_to_three_are_marked_by_level(tag, mark):
    assert html_to_text(f"<p>a</p><{tag}>Head</{tag}><p>b</p>")[1] == f"a\n\n{mark}Head\n\nb"


@pytest.mark.parametrize("tag", ["script", "style", "noscript", "template", "svg", "SCRIPT"])
def test_non_text_elements_are_left_out(tag):
    assert html_to_text(f"<p>keep</p><{tag}>drop(me)</{tag}><p>this</p>") == ("", "keep\n\nthis")


def test_nested_skipped_elements_are_left_out_until_the_outer_one_closes():
    html = "<p>a</p><svg><g><text>inner</text></g><svg>deep</svg>tail</svg><p>b</p>"
    assert html_to_text(html)[1] == "a\n\nb"


def test_a_stray_closing_tag_of_a_skipped_element_does_not_hide_the_rest():
    assert html_to_text("</script><p>still here</p>")[1] == "still here"


def test_the_head_is_left_out_but_its_title_is_kept():
    html = "<head><title>Name</title><meta charset='utf-8'><link rel=x href=y><base href=z></head><body>Body</body>"
    assert html_to_text(html) == ("Name", "Body")


def test_text_in_the_head_is_shown_where_a_browser_shows_it():
    # Text ends the head (HTML's parsing rules): browsers show it in the body, and so does the tool.
    html = "<head><title>Name</title><meta charset='utf-8'>shown</head><body>Body</body>"
    assert html_to_text(html) == ("Name", "shownBody")


def test_a_page_without_a_title_has_an_empty_one():
    assert html_to_text("<p>text</p>") == ("", "text")


def test_entities_are_decoded():
    assert html_to_text("<title>A &amp; B</title><p>1 &lt; 2 &gt; 0 &#8364; &eacute;</p>") == ("A & B", "1 < 2 > 0 € é")


def test_spaces_and_tabs_collapse_and_blank_lines_collapse_to_one():
    html = "<div>a \t  b</div>\n\n\n<div>   </div>\n<div>c</div>"
    assert html_to_text(html)[1] == "a b\n\nc"


def test_inline_elements_do_not_break_lines():
    assert html_to_text("<p>one <b>bold</b> and <a href='/x'>link</a>.</p>")[1] == "one bold and link."


def test_a_line_break_starts_a_new_line():
    assert html_to_text("<p>first<br>second</p>")[1] == "first\nsecond"


def test_table_rows_are_separate_lines():
    assert html_to_text("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>")[1] == "ab\n\nc"


def test_preformatted_text_keeps_single_newlines():
    assert html_to_text("<pre>line 1\nline 2</pre>")[1] == "line 1\nline 2"


def test_comments_and_processing_instructions_are_left_out():
    assert html_to_text("<p>a<!-- hidden -->b<?php echo 1 ?>c</p><![CDATA[x]]>")[1].startswith("abc")


def test_markup_html_parser_refused_is_read():
    assert html_to_text("<html><![foo[x]]><p>after</p></html>")[1].endswith("after")


def test_an_empty_page_is_empty_text():
    assert html_to_text("") == ("", "") and html_to_text(" \n ") == ("", "")


def test_a_page_that_declares_another_encoding_is_read_as_decoded():
    html = '<?xml version="1.0" encoding="latin-1"?><html><head><meta charset="koi8-r"></head><p>café €</p></html>'
    assert html_to_text(html)[1] == "café €"


# Pages that took html.parser minutes (its regular expressions backtrack, holding the GIL) or that nest
# deeper than a recursive walk could go; each at the tool's byte limit (2 MiB).
PATHOLOGICAL = {
    "unclosed tag starts": "<a" * (1024 * 1024),
    "open anchors": "<a>" * 700_000,
    "nested divs": "<div>" * 400_000 + "x",
    "formatting with attributes": "".join(f"<b id={i}>x" for i in range(150_000)),
    "comment starts": "<!--" * 500_000,
    "markup declarations": "<![a[" * 400_000,
    "character references": "&#" * 1024 * 1024,
    "attribute soup": "<p " + "a=" * 1024 * 1024,
}


@pytest.mark.parametrize("html", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_pages_convert_in_linear_time(html):
    started = time.monotonic()
    title, text = html_to_text(html)
    assert time.monotonic() - started < 5  # a regression guard (html.parser: minutes), not a benchmark
    assert isinstance(text, str) and len(text) <= len(html)


def test_a_page_nested_deeper_than_the_parser_goes_keeps_what_comes_before():
    html = "<p>before</p>" + "<div>" * 5000 + "deep" + "</div>" * 5000
    assert html_to_text(html)[1].startswith("before")


def test_plain_text_passes_through_trimmed():
    assert html_to_text("  just text  ") == ("", "just text")
