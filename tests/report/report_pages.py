"""Reading report pages back: <img> sources, external references, table cells, PNGs."""

import base64
import io
from html.parser import HTMLParser

from PIL import Image


class Page(HTMLParser):
    """Collects <img> sources, external references and the text of table cells."""

    def __init__(self):
        super().__init__()
        self.images, self.external, self.cells, self.tags = [], [], [], []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            if value and not value.startswith(("data:", "#")):
                self.external.append(value)
        if tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append("".join(self._cell).strip())
            self._cell = None


def parse(path_or_text):
    page = Page()
    text = path_or_text if isinstance(path_or_text, str) else path_or_text.read_text()
    page.feed(text)
    return page


def decode_png(uri):
    assert uri.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    image.load()
    assert image.format == "PNG"
    return image
