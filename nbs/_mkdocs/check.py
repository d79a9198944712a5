"""Check the built site as a reader would: no broken internal link or image, every module page shows an output or a
figure, no "nan" or "yet" in a table or a figure's title, and screenshots of the home page, a module page and the
report in headless Chromium (skipped, saying so, where Debian's `chromium` is not installed).

    python nbs/_mkdocs/check.py [--no-screenshots]"""
import argparse, base64, json, re, shutil, subprocess, sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[2]
SITE, SHOTS = ROOT/'_docs'/'site', ROOT/'_docs'/'screenshots'
# (page, height): an anchor would scroll, which headless Chromium captures badly, so the entry is shown from the top
PAGES = {'home': ('index.html', 1400), 'module': ('03_models.html', 1200), 'report': ('report.html', 1400)}
MODULE_PAGE = re.compile(r'\d\d[a-z]?_\w+\.html')
# module pages that may show no output: why each is allowed
NO_OUTPUT_OK = {}
IMAGE_MAGIC = (b'\x89PNG', b'\xff\xd8\xff', b'GIF8', b'<svg', b'<?xml')
PLACEHOLDER = re.compile(r'\b(nan|yet)\b', re.I)


class Links(HTMLParser):
    "The ids and the internal link targets of one page."
    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get('id'): self.ids.add(a['id'])
        if tag == 'a' and a.get('name'): self.ids.add(a['name'])
        for key in ('href', 'src'):
            v = a.get(key)
            if v and not urlsplit(v).scheme and not v.startswith(('//', 'data:', 'javascript:')): self.links.append(v)


def parse(page):
    p = Links()
    p.feed(page.read_text(encoding='utf-8', errors='replace'))
    return p


def broken_links(site=SITE):
    "`[(page, link)]` of every internal link whose file or anchor is missing."
    pages, bad = {p: parse(p) for p in site.rglob('*.html')}, []
    for page, info in pages.items():
        for link in info.links:
            u = urlsplit(link)
            base = site if u.path.startswith('/') else page.parent          # 404.html links from the site root
            target = (base/unquote(u.path).lstrip('/')).resolve() if u.path else page
            if target.is_dir(): target = target/'index.html'
            if not target.exists():
                bad.append((page.relative_to(site), link))
                continue
            if u.fragment and target.suffix == '.html':
                ids = pages[target].ids if target in pages else parse(target).ids
                if unquote(u.fragment) not in ids: bad.append((page.relative_to(site), link))
    return bad


def image_bytes(page, src):
    "The bytes an `<img src>` of `page` loads (a data: URI or a file of the site), or None when there is no file."
    if src.startswith('data:'):
        head, _, data = src.partition(',')
        return base64.b64decode(data) if head.endswith(';base64') else data.encode()
    target = (page.parent/unquote(urlsplit(src).path)).resolve()
    return target.read_bytes() if target.is_file() else None


class Images(HTMLParser):
    "The image sources, the table cells' text and whether a page shows a notebook output."
    def __init__(self):
        super().__init__()
        self.images, self.cells, self.outputs, self._cell = [], [], 0, None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'img' and a.get('src'): self.images.append(a['src'])
        if 'jp-OutputArea-output' in (a.get('class') or ''): self.outputs += 1
        if tag in ('td', 'th'): self._cell = []
    def handle_data(self, data):
        if self._cell is not None: self._cell.append(data)
    def handle_endtag(self, tag):
        if tag in ('td', 'th') and self._cell is not None:
            self.cells.append(''.join(self._cell).strip())
            self._cell = None


def reader_problems(site=SITE):
    """`[(page, problem)]`: images that do not load (missing, empty, not an image), module pages with no output or
    figure (beyond `NO_OUTPUT_OK`), and "nan" or "yet" in a table cell or a figure's title."""
    bad = []
    for page in sorted(site.rglob('*.html')):
        p = Images()
        p.feed(page.read_text(encoding='utf-8', errors='replace'))
        name = page.relative_to(site)
        for src in p.images:
            data = image_bytes(page, src)
            if not data or not data.lstrip()[:8].startswith(IMAGE_MAGIC):
                bad.append((name, f'image does not load: {src[:80]}'))
        if MODULE_PAGE.fullmatch(page.name) and not p.outputs and not p.images and page.name not in NO_OUTPUT_OK:
            bad.append((name, 'a module page without any output or figure'))
        bad += [(name, f'table cell {c!r}') for c in p.cells if PLACEHOLDER.search(c)]
    titles = site/'figure_titles.json'                    # written by the build from each figure's text
    for page, texts in (json.loads(titles.read_text()) if titles.exists() else {}).items():
        bad += [(page, f'figure title {t!r}') for t in texts if PLACEHOLDER.search(t)]
    return bad


def screenshots(site=SITE, out=SHOTS):
    "PNG screenshots of the pages in `PAGES`, served on 127.0.0.1 as `make docs-serve` does; None without Chromium."
    exe = shutil.which('chromium') or shutil.which('chromium-browser')
    if exe is None: return None
    out.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen([sys.executable, '-m', 'http.server', '0', '--bind', '127.0.0.1',
                               '--directory', str(site)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = int(server.stdout.readline().split('port ')[1].split()[0])     # "Serving HTTP on 127.0.0.1 port N ..."
        shots = []
        for name, (page, height) in PAGES.items():
            png = out/f'{name}.png'
            subprocess.run([exe, '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
                            f'--screenshot={png}',
                            f'--window-size=1280,{height}', '--virtual-time-budget=5000',
                            f'http://127.0.0.1:{port}/{page}'],
                           check=True, capture_output=True, timeout=120)
            shots.append(png)
        return shots
    finally:
        server.kill()
        server.wait()


def main(argv=None):
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument('--no-screenshots', action='store_true')
    a = a.parse_args(argv)
    if not (SITE/'index.html').exists(): sys.exit(f'no site in {SITE}: run `make docs` first')
    bad = broken_links()
    for page, link in bad[:50]: print(f'BROKEN {page}: {link}')
    print(f'{len(bad)} broken internal link(s) in {len(list(SITE.rglob("*.html")))} pages')
    problems = reader_problems()
    for page, problem in problems[:50]: print(f'PROBLEM {page}: {problem}')
    print(f'{len(problems)} problem(s) a reader would see')
    if not a.no_screenshots:
        shots = screenshots()
        if shots is None: print('chromium not installed (apt-get install chromium): screenshots skipped')
        else: print('screenshots: ' + ', '.join(map(str, shots)))
    return 1 if bad or problems else 0


if __name__ == '__main__': sys.exit(main())
