"""web_fetch's HTML to text: the title, readable text with headings and lists, no scripts or styles."""

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
    html = "<head><title>Name</title><meta charset='utf-8'>metadata</head><body>Body</body>"
    assert html_to_text(html) == ("Name", "Body")


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


def test_plain_text_passes_through_trimmed():
    assert html_to_text("  just text  ") == ("", "just text")
