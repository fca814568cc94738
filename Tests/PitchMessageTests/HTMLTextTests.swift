import Testing
@testable import PitchMessage

/// Golden cases for `HTMLText`: each table pins one group of the rules in its doc comment, with exact expected
/// strings, positive and negative.
@Suite struct HTMLTextTests {
    // MARK: Markup that is dropped

    static let droppedMarkup: [(String, String)] = [
        ("a<script>var x = \"<p>no</p>\";</script>b", "ab"),
        ("a<SCRIPT type=\"text/javascript\">x</ScRiPt >b", "ab"),
        ("a<script>if (a</scripts) x</script>b", "ab"),
        ("a<script>x</script\nfoo=\"1\">b", "ab"),
        ("a<script/>hidden</script>b", "ab"),
        ("a<style>p { color: red }</style>b", "ab"),
        ("<title>Subject</title>Body", "Body"),
        ("<template><p>t</p></template>x", "x"),
        ("<xml><o:OfficeDocumentSettings><o:AllowPNG/></o:OfficeDocumentSettings></xml>Hi", "Hi"),
        ("a<!-- hidden -->b", "ab"),
        ("a<!-- x -- y -> -->b", "ab"),
        ("a<!---->b", "ab"),
        ("a<!-->b", "ab"),
        ("a<!--->b", "ab"),
        ("a<!-- x --!>b", "ab"),
        ("a<!--!>b-->c", "ac"),
        ("a<!-- <!-- -->b-->c", "ab-->c"),
        ("<!--[if mso]><p>mso</p><![endif]-->x", "x"),
        ("<!--[if !mso]><!--><p>all</p><!--<![endif]-->", "all"),
        ("<![if !mso]>x<![endif]>", "x"),
        ("<!DOCTYPE html><html><body>x</body></html>", "x"),
        ("<?xml version=\"1.0\"?>x", "x"),
        ("a<![CDATA[ b < c ]]>d", "ad"),
        ("a</>b", "ab"),
        ("a</ b>c", "ac"),
        ("a</3>b", "ab"),
        // Unclosed: the rest of the document goes, as in browsers.
        ("a<!-- never closed <p>b</p>", "a"),
        ("a<script>never closed", "a"),
        ("a<style>p {}</styl", "a"),
        ("a<title>x</title", "a"),
        ("a<![CDATA[ never", "a"),
        ("a<!DOCTYPE html", "a"),
        ("a<?php", "a"),
        ("a</b", "a"),
        ("a</", "a"),
        // Negative: elements that only look like the dropped ones keep their text.
        ("<scripts>kept</scripts>", "kept"),
        ("<noscript>kept</noscript>", "kept"),
        ("<head><meta charset=utf-8></head>kept", "kept"),
    ]

    @Test(arguments: droppedMarkup)
    func dropsMarkup(html: String, expected: String) {
        #expect(HTMLText(html: html).text == expected)
    }

    // MARK: Garbage and tag syntax

    static let garbage: [(String, String)] = [
        ("a < b", "a < b"),
        ("<<<", "<<<"),
        ("a <3 b", "a <3 b"),
        ("1<2", "1<2"),
        ("x = <=", "x = <="),
        ("a<", "a<"),
        ("<", "<"),
        ("if a<b and c>d", "if ad"),
        ("<P>One<DIV>Two</DIV></P>", "One\nTwo"),
        ("a<div x=\"1\"y='2'z>b", "a\nb"),
        ("a<b c=>d", "ad"),
        ("a<b c = 'x' d>e", "ae"),
        ("<a href='x>y'>link</a>", "link"),
        ("<a href=\"x>y\">link</a>", "link"),
        ("a<b\u{0}>c", "ac"),
        ("a\u{0}b\u{0}", "ab"),
        ("\u{0}", ""),
        // A tag that never closes, or an attribute quote that never closes, ends the document.
        ("x <a href=\"y", "x"),
        ("x <p", "x"),
        ("x <p ", "x"),
        ("x <p a=", "x"),
        ("<a href=\"x\" title=\"unterminated>text</a>", ""),
        ("<img src=x alt='unterminated>text", ""),
        ("a<span\n class=\"c\"\n>b</span>", "ab"),
    ]

    @Test(arguments: garbage)
    func toleratesGarbage(html: String, expected: String) {
        #expect(HTMLText(html: html).text == expected)
    }

    // MARK: Character references

    static let references: [(String, String)] = [
        ("&lt;p&gt; &amp; &quot;x&quot; &apos;y&apos;", "<p> & \"x\" 'y'"),
        ("&eacute;t&eacute;", "été"),
        ("&Eacute;", "É"),
        ("&thetasym;", "ϑ"),
        ("&euro;&hellip;&mdash;", "€…—"),
        ("&lang;&rang;", "\u{2329}\u{232A}"),
        ("&amp;lt;", "&lt;"),
        // Numeric.
        ("&#123;&#x7B;&#X7b;", "{{{"),
        ("&#65", "A"),
        ("&#65x", "Ax"),
        ("&#x41g", "Ag"),
        ("&#0065;", "A"),
        ("&#128512;", "😀"),
        ("&#150;", "–"),
        ("&#x96;", "–"),
        ("&#128;", "€"),
        ("&#153;", "™"),
        ("&#x81;", "\u{81}"),
        ("&#0;", "\u{FFFD}"),
        ("&#xD800;", "\u{FFFD}"),
        ("&#xDFFF;", "\u{FFFD}"),
        ("&#x10FFFF;", "\u{10FFFF}"),
        ("&#x110000;", "\u{FFFD}"),
        ("&#99999999999999999999;", "\u{FFFD}"),
        ("&#;", "&#;"),
        ("&#x;", "&#x;"),
        ("&#xZ;", "&#xZ;"),
        ("&#-1;", "&#-1;"),
        // Legacy names without the semicolon: only the seven, only before a non-alphanumeric.
        ("&amp", "&"),
        ("&lt&gt", "<>"),
        ("&quot.", "\"."),
        ("&copy 2024", "© 2024"),
        ("&copy2024", "&copy2024"),
        ("&copy;2024", "©2024"),
        ("&reg.", "®."),
        ("&ampfoo", "&ampfoo"),
        ("&eacute", "&eacute"),
        ("&apos", "&apos"),
        // Unknown or malformed names stay literal.
        ("&bogus;", "&bogus;"),
        ("&EACUTE;", "&EACUTE;"),
        ("&AMP;", "&AMP;"),
        ("&toolongname;", "&toolongname;"),
        ("AT&T", "AT&T"),
        ("&", "&"),
        ("& b", "& b"),
        ("&&amp;", "&&"),
        ("&;", "&;"),
    ]

    @Test(arguments: references)
    func decodesCharacterReferences(html: String, expected: String) {
        #expect(HTMLText(html: html).text == expected)
    }

    // MARK: White space and pre

    static let whiteSpace: [(String, String)] = [
        ("  a \t\r\n b  ", "a b"),
        ("a\u{0C}b", "a b"),
        ("a\u{0B}b", "a\u{0B}b"),
        ("a&nbsp;&nbsp;b", "a b"),
        ("a\u{A0}\u{A0}b", "a b"),
        ("a&#160;b", "a b"),
        ("&nbsp;a&nbsp;", "a"),
        ("&#32;a&#10;b&#9;", "a b"),
        ("a \u{2003} b", "a \u{2003} b"),
        ("<pre>  a  b\r\n\tc\n\n\nd  </pre>", "a  b\nc\nd"),
        ("<pre>a\tb</pre>", "a\tb"),
        ("<pre>a&nbsp;&nbsp;b</pre>", "a  b"),
        ("<pre>a\u{A0}b</pre>", "a b"),
        ("<pre>a&#10;b&#13;c</pre>", "a\nb\nc"),
        ("x<pre>a\rb</pre>y", "x\na\nb\ny"),
        ("<pre>a <b> x</b></pre>", "a  x"),
        ("<PRE>a  b</PRE>c  d", "a  b\nc d"),
        ("<pre>a<pre>b</pre>c  d</pre>e  f", "a\nb\nc  d\ne f"),
        ("</pre>a  b", "a b"),
        ("</pre></pre><pre>a  b", "a  b"),
        ("<pre/>a  b", "a  b"),
        ("<pre>a<td>b</td></pre>", "a b"),
    ]

    @Test(arguments: whiteSpace)
    func collapsesWhiteSpace(html: String, expected: String) {
        #expect(HTMLText(html: html).text == expected)
    }

    // MARK: Lines

    static let lines: [(String, String)] = [
        ("<p>Hi  <b>there</b></p><p>x</p>", "Hi there\nx"),
        ("W<b>or</b>d", "Word"),
        ("a<span>b</span>c<i>d</i><font color=red>e</font><strong>f</strong><em>g</em><u>h</u>", "abcdefgh"),
        ("a <span> b </span> c", "a b c"),
        ("a<br>b", "a\nb"),
        ("a<BR/>b<Br >c", "a\nb\nc"),
        ("a<br><br><br>b", "a\nb"),
        ("a</br>b", "a\nb"),
        ("<br>a<br>", "a"),
        ("<div><div><p>a</p></div></div>b", "a\nb"),
        ("<ul><li>one</li><li>two</li></ul>", "one\ntwo"),
        ("<ol><li>one<li>two</ol>after", "one\ntwo\nafter"),
        ("<h1>T</h1>x<h6>y</h6>z", "T\nx\ny\nz"),
        ("a<hr>b", "a\nb"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><th>c</th><td>d</td></tr></table>", "a b\nc d"),
        ("<td> a </td>  <td>  b</td>", "a b"),
        ("<td>a</td><td></td><td>b</td>", "a b"),
        ("<td>a<td>b", "a b"),
        ("<center>x</center><blockquote>y</blockquote><address>z</address>", "x\ny\nz"),
        ("a<dl><dt>t<dd>d</dl>", "a\nt\nd"),
        ("a<section>b</section>c<article>d</article>", "a\nb\nc\nd"),
        (
            "<header>1</header><footer>2</footer><nav>3</nav><aside>4</aside><main>5</main><form>6</form>",
            "1\n2\n3\n4\n5\n6"
        ),
        (
            "<fieldset>1</fieldset><figure>2<figcaption>3</figcaption></figure>"
                + "<details><summary>4</summary>5</details>",
            "1\n2\n3\n4\n5"
        ),
        ("<TABLE><TR><TD>a</TD><TH>b</TH></TR></TABLE>", "a b"),
        ("a<body>b</body>c<html>d", "a\nb\nc\nd"),
        ("<p>  </p><p>x</p>", "x"),
        ("<p>a</p>\n\n  \n<p>b</p>", "a\nb"),
        ("a<img src=\"x.png\" alt=\"ALT\">b", "ab"),
        // Negative: inline and unknown elements break nothing.
        ("<caption>x</caption>y", "xy"),
        ("a<o:p></o:p>b", "ab"),
        ("a<custom-element>b</custom-element>", "ab"),
        ("a<diva>b", "ab"),
    ]

    @Test(arguments: lines)
    func breaksLines(html: String, expected: String) {
        #expect(HTMLText(html: html).text == expected)
    }

    // MARK: Links

    static let links: [(String, [String])] = [
        (
            "<a href=\"https://a.example/\">A</a> <a HREF='https://b.example/?x=1&amp;y=2'>B</a> "
                + "<map><area href=https://c.example/></map>",
            ["https://a.example/", "https://b.example/?x=1&y=2", "https://c.example/"]
        ),
        ("<a href=\"x\">1</a><a href=\"x\">2</a>", ["x", "x"]),
        ("<a href=\"  x\n \">", ["x"]),
        ("<a href>", [""]),
        ("<a href=\"\">", [""]),
        ("<a name=\"top\">", []),
        ("<link href=\"style.css\" rel=\"stylesheet\"><a href=\"y\">", ["y"]),
        ("<a href=\"?a=1&copy=2&amp=3&lt;\">", ["?a=1&copy=2&amp=3<"]),
        ("<a href=\"?a=1&copy;=2&amp\">", ["?a=1©=2&"]),
        ("<a href=\"x\" href=\"y\">", ["x"]),
        ("<a href='x>y'>link</a><a href=\"p'q\">", ["x>y", "p'q"]),
        ("<a href=\"&#104;ttp://x\">", ["http://x"]),
        ("<a href=x&amp;y&lt>", ["x&y<"]),
        ("<a href = \"x\" >", ["x"]),
        ("<a href=\"x&bogus;y\">", ["x&bogus;y"]),
        ("<A Href=\"X\">", ["X"]),
        ("<a\nhref\n=\n'x'\n>", ["x"]),
        ("<a title=\"href=no\" href=yes>", ["yes"]),
        ("<a href=\"a\u{0}b\">", ["ab"]),
        ("<a href=\"x\"", []),
        ("<!-- <a href=\"c\"> --><script><a href=\"s\"></script><style><a href=\"t\"></style><a href=\"ok\">", ["ok"]),
        ("<abbr href=\"no\"><areas href=\"no\">", []),
    ]

    @Test(arguments: links)
    func collectsLinks(html: String, expected: [String]) {
        #expect(HTMLText(html: html).links == expected)
    }

    // MARK: Hidden text

    /// The text, and the parts of it the reader is not shown (each hidden range's text, trimmed).
    static let hiddenText: [(String, String, [String])] = [
        // A preheader, as marketing tools write it, above the greeting.
        ("<div style=\"display:none;max-height:0;overflow:hidden\">Quick idea</div><p>Hi ,</p>",
         "Quick idea\nHi ,", ["Quick idea"]),
        ("<span style=\"opacity:0; color:#fff\">pre</span>Hello", "preHello", ["pre"]),
        ("<div style=\"mso-hide:all;max-height:0px;overflow:hidden\">a <div>b</div> c</div>d", "a\nb\nc\nd",
         ["a\nb\nc"]),
        ("<div hidden>x</div><div>y</div>", "x\ny", ["x"]),
        ("<table style=\"visibility:hidden\"><tr><td>x</td></tr></table><p>y</p>", "x\ny", ["x"]),
        ("<DIV STYLE=\"DISPLAY: NONE !important\">x</DIV>y", "x\ny", ["x"]),
        // Two hidden elements in a row are one range.
        ("<div hidden>a</div><div hidden>b</div>c", "a\nb\nc", ["a\nb"]),
        // Never closed: hidden to the end, as a browser hides it.
        ("<div hidden>x<p>y", "x\ny", ["x\ny"]),
        // Shown: other tags and values, a max-height without overflow hidden, an element with no text.
        ("<p style=\"display:none\">x</p>y", "x\ny", []),
        ("<div style=\"display:block\">x</div>", "x", []),
        ("<div style=\"max-height:0\">x</div>", "x", []),
        ("<div style=\"opacity:0.5\">x</div>", "x", []),
        ("<div hidden></div>x", "x", []),
        ("<span hidden>a</span><span>b</span>", "ab", ["a"]),
        // A nested element of another name does not end the hidden one; one of the same name is counted.
        ("<div hidden><span>a</span>b</div>c", "ab\nc", ["ab"]),
        // Found in review: closed with an element around it, as browsers close it.
        ("<div><span style=\"display:none\">Quick idea</div><p>Hi ,</p>", "Quick idea\nHi ,", ["Quick idea"]),
        ("<table><tr><td><div hidden>pre</td><td>Hi ,</td></tr></table>", "pre Hi ,", ["pre"]),
        ("<div hidden>a<p>b</p>c</div>d", "a\nb\nc\nd", ["a\nb\nc"]),
        ("<div hidden>a<p>b<p>c</div>d", "a\nb\nc\nd", ["a\nb\nc"]),
    ]

    @Test(arguments: hiddenText)
    func findsTextTheReaderIsNotShown(html: String, text: String, hidden: [String]) {
        let converted = HTMLText(html: html)
        #expect(converted.text == text)
        let bytes = Array(converted.text.utf8)
        let shown = converted.hiddenRanges.map {
            String(decoding: bytes[$0].drop { $0 == UInt8(ascii: "\n") }, as: UTF8.self)
        }
        #expect(shown == hidden)
    }

    // MARK: Images

    static let images: [(String, [ImageReference])] = [
        (
            "<img src=\"https://t.example/p.gif\" width=\"1\" height=\"1\" style=\"display:none\">",
            [ImageReference(source: "https://t.example/p.gif", width: 1, height: 1, isHidden: true)]
        ),
        ("<img src='a.png' width=\"1px\" height=\"2PX\">", [ImageReference(source: "a.png", width: 1, height: 2)]),
        ("<img src=a.png style=\"width: 1px; height:1px\">", [ImageReference(source: "a.png", width: 1, height: 1)]),
        ("<img src=a width=100 style=\"width:1px\">", [ImageReference(source: "a", width: 1)]),
        ("<img src=a width=100 style=\"width:auto\">", [ImageReference(source: "a", width: 100)]),
        ("<img src=a style=\"width:1px;width:50px\">", [ImageReference(source: "a", width: 50)]),
        ("<img src=a width=\"100%\" height=\"auto\">", [ImageReference(source: "a")]),
        ("<img src=a width=\"1.5\" height=\"2.\">", [ImageReference(source: "a", width: 1, height: 2)]),
        ("<img src=a width=\"-1\" height=\"1 px\">", [ImageReference(source: "a")]),
        ("<img src=a width=\" 7 \" height=\"\">", [ImageReference(source: "a", width: 7)]),
        ("<img src=a width=\"99999999999\">", [ImageReference(source: "a", width: 2_147_483_647)]),
        ("<img src=a style=\"visibility:hidden\">", [ImageReference(source: "a", isHidden: true)]),
        ("<img src=a style=\"VISIBILITY:Hidden\">", [ImageReference(source: "a", isHidden: true)]),
        ("<img src=a width=1 style=\"width:0\">", [ImageReference(source: "a", width: 0)]),
        ("<img src=a style=\"width=1px; height\">", [ImageReference(source: "a")]),
        ("<img src=a style=\"DISPLAY : NONE !important\">", [ImageReference(source: "a", isHidden: true)]),
        ("<img src=a style=\"display:none; display:block\">", [ImageReference(source: "a")]),
        ("<img src=a style=\"display:block; visibility:visible\">", [ImageReference(source: "a")]),
        ("<img src=a hidden>", [ImageReference(source: "a", isHidden: true)]),
        ("<img src=a HIDDEN=\"false\">", [ImageReference(source: "a", isHidden: true)]),
        (
            "<img alt=\"Buy &amp; save \" src=\" &#x68;ttps://x/i.png \">",
            [ImageReference(source: "https://x/i.png", altText: "Buy & save ")]
        ),
        ("<img>", [ImageReference(source: "")]),
        ("<IMG SRC=\"A\"/>", [ImageReference(source: "A")]),
        ("<image src=a>", [ImageReference(source: "a")]),
        ("<img src=a><img src=b>", [ImageReference(source: "a"), ImageReference(source: "b")]),
        ("<img src=\"a\"", []),
        ("<style><img src=x></style><!-- <img src=y> --><imgs src=z>", []),
    ]

    @Test(arguments: images)
    func collectsImages(html: String, expected: [ImageReference]) {
        #expect(HTMLText(html: html).images == expected)
    }

    // MARK: Bounds

    static let truncation: [(html: String, max: Int, text: String, truncated: Bool)] = [
        ("hello", 5, "hello", false),
        ("hello world", 5, "hello", true),
        ("hello world", 6, "hello", true),
        ("hello world", 7, "hello w", true),
        ("<p>hello</p><p>world</p>", 6, "hello", true),
        ("<p>hello</p><p>world</p>", 7, "hello\nw", true),
        ("ééé", 4, "éé", true),
        ("ééé", 3, "é", true),
        ("ab&eacute;", 3, "ab", true),
        ("ab&eacute;", 4, "abé", false),
        ("<pre>a   b</pre>", 3, "a", true),
        ("", 0, "", false),
        ("<p> &nbsp; </p>", 0, "", false),
        ("x", 0, "", true),
        ("x", -1, "", true),
        ("<p>aaaa</p><p>bbbb</p><p>cccc</p>", 4, "aaaa", true),
    ]

    @Test(arguments: truncation)
    func boundsText(html: String, max: Int, text: String, truncated: Bool) {
        let result = HTMLText(html: html, maxTextBytes: max)
        #expect(result.text == text)
        #expect(result.defects == (truncated ? [Defect(.textTruncated)] : []))
    }

    @Test func collectsLinksAndImagesAfterTextIsFull() {
        let result = HTMLText(html: "hello <a href=\"x\">world</a> <img src=y> <a href=z>", maxTextBytes: 5)
        #expect(result.text == "hello")
        #expect(result.links == ["x", "z"])
        #expect(result.images == [ImageReference(source: "y")])
        #expect(result.defects == [Defect(.textTruncated)])
    }

    @Test func boundsLinksAndImages() {
        let html = String(repeating: "<a href=l><img src=i>", count: HTMLText.maxReferences + 5)
        let result = HTMLText(html: html)
        #expect(result.links.count == HTMLText.maxReferences)
        #expect(result.images.count == HTMLText.maxReferences)
        #expect(result.defects == [Defect(.htmlTooComplex, detail: "more than 10000 links")])
    }

    @Test func boundsImages() {
        let result = HTMLText(html: String(repeating: "<img src=i>", count: HTMLText.maxReferences + 1))
        #expect(result.images.count == HTMLText.maxReferences)
        #expect(result.defects == [Defect(.htmlTooComplex, detail: "more than 10000 images")])
    }

    @Test func defaultBoundIsTheLimit() {
        let html = String(repeating: "x", count: Limits.default.maxDecodedTextBytes + 1)
        let result = HTMLText(html: html)
        #expect(result.text.utf8.count == Limits.default.maxDecodedTextBytes)
        #expect(result.defects == [Defect(.textTruncated)])
    }

    // MARK: Hostile input (correctness here; timing is for the benchmark)

    @Test func deepNesting() {
        let depth = 10_000
        let html = String(repeating: "<div><span><b>", count: depth) + "x"
            + String(repeating: "</b></span></div>", count: depth)
        #expect(HTMLText(html: html).text == "x")
    }

    @Test func manyLessThanSigns() {
        let html = String(repeating: "<", count: 100_000)
        #expect(HTMLText(html: html).text == html)
    }

    @Test func manyUnclosedTags() {
        #expect(HTMLText(html: "x " + String(repeating: "<a ", count: 100_000)).text == "x")
        #expect(HTMLText(html: "x " + String(repeating: "<a href=\"", count: 100_000)).text == "x")
        #expect(HTMLText(html: "<script>" + String(repeating: "</scrip", count: 100_000)).text == "")
        #expect(HTMLText(html: "<!--" + String(repeating: "-- >", count: 100_000)).text == "")
    }

    @Test func longTextRun() {
        let html = String(repeating: "abcdefgh", count: 500_000)
        let result = HTMLText(html: html, maxTextBytes: 1_000_000)
        #expect(result.text == String(repeating: "abcdefgh", count: 125_000))
        #expect(result.defects == [Defect(.textTruncated)])
    }

    @Test func newsletter() {
        let html = """
            <!DOCTYPE html><html><head><title>Weekly</title>
            <style type="text/css">body { margin: 0 } .x > p { color: #333 }</style>
            <!--[if mso]><xml><o:OfficeDocumentSettings><o:PixelsPerInch>96</o:PixelsPerInch>
            </o:OfficeDocumentSettings></xml><![endif]-->
            </head><body>
            <table role="presentation" width="100%"><tr><td align="center">
              <h1>Spring&nbsp;Sale &mdash; 50% off</h1>
              <p>Dear customer,<br>our <a href="https://shop.example/sale?utm_source=mail&amp;id=7">best
              deals</a> are here.</p>
            </td></tr><tr><td>Price</td><td>&euro;&#8201;9.99</td></tr></table>
            <img src="https://t.example/open.gif?u=1&amp;m=2" width="1" height="1" alt="" border="0">
            <p style="font-size:10px">Unsubscribe <a href='https://shop.example/unsub'>here</a>.</p>
            </body></html>
            """
        let result = HTMLText(html: html)
        #expect(result.text == """
            Spring Sale — 50% off
            Dear customer,
            our best deals are here.
            Price €\u{2009}9.99
            Unsubscribe here.
            """)
        #expect(result.links == ["https://shop.example/sale?utm_source=mail&id=7", "https://shop.example/unsub"])
        #expect(result.images == [ImageReference(source: "https://t.example/open.gif?u=1&m=2", width: 1, height: 1)])
        #expect(result.defects.isEmpty)
    }
}
