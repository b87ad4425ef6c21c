"""Read and write Pascal VOC XML annotations, in VOC's own layout or as a flat image/XML folder pair.

VOC layout: ``Annotations/<id>.xml``, ``JPEGImages/<id>.jpg``, ``ImageSets/Main/<split>.txt`` (one
id per line). The flat variant is any folder of images plus any folder of XML files whose stems
match (often the same folder, as labelImg saves them). The image of an XML is found by its stem,
not by ``<filename>``, which tools often leave stale.

VOC coordinates are 1-based and inclusive (``xmin = 1`` is the first pixel column), so a box reads
as ``x1 = xmin - 1, y1 = ymin - 1, x2 = xmax, y2 = ymax`` (as Detectron2 does) and is written back
with integer ``xmin = round(x1) + 1, xmax = round(x2)``: a round trip is exact for integer boxes and
within 0.5 px otherwise. Class order comes from ``class_names``, else from ``labels.txt`` /
``classes.txt`` in the root (written by ``write_voc``), else the sorted names found; with a given
order, an object of another class is an invalid box ("unknown class"). XML is parsed with
defusedxml (no DTDs, no entities: a hostile file cannot expand) and files over ``MAX_XML_BYTES``
are skipped, so memory stays bounded.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeET
import numpy as np
from defusedxml import DefusedXmlException

from amlvision.detection.annotations import DetectionSet, ImageBoxes, InvalidBox
from amlvision.detection.checks import WHOLE_FILE, box_problems, clip_boxes, warn_skipped
from amlvision.detection.files import atomic_dir, image_size, images_by_stem, place_image

MAX_XML_BYTES = 4 * 1024 * 1024  # a VOC file with 1,000 objects is about 250 KB
CLASS_LIST_FILES = ("labels.txt", "classes.txt")
DEFAULT_SPLIT = "train"


class VocFormatError(ValueError):
    """A VOC folder or split file is unusable; the message names the file."""


class _Skip(Exception):
    """This XML file cannot be used at all (reported as a whole-file InvalidBox)."""


def _text(element: ET.Element, path: str) -> str | None:
    found = element.find(path)
    return None if found is None or found.text is None else found.text.strip()


def _number(element: ET.Element, path: str) -> float:
    text = _text(element, path)
    if text is None:
        raise ValueError(f"no <{path}>")
    return float(text)


def _parse(xml_path: Path) -> ET.Element:
    try:
        if xml_path.stat().st_size > MAX_XML_BYTES:
            raise _Skip(f"larger than {MAX_XML_BYTES} bytes")
        root = SafeET.parse(xml_path, forbid_dtd=True).getroot()
    except (ET.ParseError, DefusedXmlException, OSError) as exc:
        raise _Skip(f"cannot parse XML ({exc})") from exc
    if root.tag != "annotation":
        raise _Skip(f"root element is <{root.tag}>, not <annotation>")
    return root


def _class_list(root: Path | None, class_names: list[str] | None) -> list[str] | None:
    """The given class order, else the one in ``root``'s labels.txt / classes.txt, else None."""
    if class_names is not None:
        return list(class_names)
    for name in CLASS_LIST_FILES:
        if root is not None and (root / name).is_file():
            return [line.strip() for line in (root / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    return None


def read_voc_pair(
    images_dir: str | Path,
    xml_dir: str | Path,
    class_names: list[str] | None = None,
    stems: list[str] | None = None,
    class_list_root: str | Path | None = None,
) -> DetectionSet:
    """Read the XML files of ``xml_dir`` (or only ``stems``) with their images from ``images_dir``.

    ``class_list_root``: a folder whose labels.txt / classes.txt gives the class order.
    """
    images_dir, xml_dir = Path(images_dir), Path(xml_dir)
    if not xml_dir.is_dir():
        raise VocFormatError(f"{xml_dir}: annotation folder not found")
    by_stem = images_by_stem(images_dir)
    xml_files = sorted(xml_dir.glob("*.xml")) if stems is None else [xml_dir / f"{s}.xml" for s in stems]
    names = _class_list(Path(class_list_root) if class_list_root else None, class_names)
    fixed_classes = names is not None
    names = list(names or [])
    index_of = {name: i for i, name in enumerate(names)}

    parsed: list[tuple[Path, Path, int, int, list]] = []
    invalid: list[InvalidBox] = []
    for xml_path in xml_files:
        try:
            root = _parse(xml_path)
            image_path = by_stem.get(xml_path.stem)
            if image_path is None:
                raise _Skip(f"no image named {xml_path.stem}.* in {images_dir}")
            try:
                width, height = int(_number(root, "size/width")), int(_number(root, "size/height"))
            except ValueError:
                width = height = 0
            if width <= 0 or height <= 0:  # some tools write 0; the image header knows
                try:
                    width, height = image_size(image_path)
                except OSError as exc:
                    raise _Skip(f"no <size> and the image {image_path} cannot be read ({exc})") from exc
        except _Skip as exc:
            invalid.append(InvalidBox(str(xml_path), WHOLE_FILE, str(exc)))
            continue
        objects, skipped = [], []
        for k, obj in enumerate(root.findall("object")):
            source = f"{xml_path}: object[{k}]"
            name = _text(obj, "name")
            try:
                box = [_number(obj, f"bndbox/{tag}") for tag in ("xmin", "ymin", "xmax", "ymax")]
            except ValueError as exc:
                skipped.append(InvalidBox(source, k, f"bndbox unreadable ({exc})"))
                continue
            if not name:
                skipped.append(InvalidBox(source, k, "object has no <name>"))
                continue
            if fixed_classes and name not in index_of:
                skipped.append(InvalidBox(source, k, f"unknown class {name!r}"))
                continue
            difficult = (_text(obj, "difficult") or "0") not in ("0", "false", "")
            crowd = (_text(obj, "iscrowd") or "0") not in ("0", "false", "")
            objects.append((box[0] - 1, box[1] - 1, box[2], box[3], name, difficult, crowd, k, box))
        reasons = box_problems(np.array([o[:4] for o in objects]), width, height)  # one call per file
        skipped += [
            InvalidBox(f"{xml_path}: object[{o[7]}]", o[7], f"{reason} (bndbox {o[8]})")
            for o, reason in zip(objects, reasons, strict=True)
            if reason
        ]
        invalid += sorted(skipped, key=lambda item: item.index)
        objects = [o for o, reason in zip(objects, reasons, strict=True) if not reason]
        for o in objects:  # a class exists once a valid box has it
            if o[4] not in index_of:
                index_of[o[4]] = len(names)
                names.append(o[4])
        parsed.append((xml_path, image_path, width, height, objects))
    warn_skipped(invalid)

    if not fixed_classes:  # classes found in the files: sorted, so that the order does not depend on the files
        names = sorted(names)
        index_of = {name: i for i, name in enumerate(names)}
    images = [
        ImageBoxes(
            path=image_path,
            width=width,
            height=height,
            boxes=clip_boxes(np.array([o[:4] for o in objects]).reshape(-1, 4), width, height),
            labels=[index_of[o[4]] for o in objects],
            image_id=xml_path.stem,
            difficult=[o[5] for o in objects],
            iscrowd=[o[6] for o in objects],
        )
        for xml_path, image_path, width, height, objects in parsed
    ]
    return DetectionSet(names, images, list(range(1, len(names) + 1)), invalid, source=str(xml_dir))


def _split_files(root: Path) -> dict[str, Path]:
    """ImageSets/Main split lists (one id per line); class lists (``<class>_<split>.txt``, two columns) are not."""
    splits = {}
    for path in sorted((root / "ImageSets" / "Main").glob("*.txt")):
        with open(path, encoding="utf-8") as f:
            first = next((line for line in f if line.strip()), "")
        if len(first.split()) == 1:
            splits[path.stem] = path
    return splits


def voc_splits(root: str | Path) -> list[str]:
    """The split names a VOC folder has (``ImageSets/Main/<split>.txt``), else the one default split."""
    return list(_split_files(Path(root))) or [DEFAULT_SPLIT]


def read_voc(root: str | Path, split: str | None = None, class_names: list[str] | None = None) -> DetectionSet:
    """Read a Pascal VOC folder (``Annotations/``, ``JPEGImages/``), all of it or one ``split``."""
    root = Path(root)
    if not (root / "Annotations").is_dir():
        raise VocFormatError(f"{root}: no Annotations/ folder (for a flat image/XML pair use read_voc_pair)")
    stems = None
    split_files = _split_files(root)
    if split is not None and split_files:
        if split not in split_files:
            raise VocFormatError(f"{root}: no split {split!r} in ImageSets/Main (has {sorted(split_files)})")
        lines = split_files[split].read_text(encoding="utf-8").splitlines()
        stems = [line.split()[0] for line in lines if line.strip()]
    elif split not in (None, DEFAULT_SPLIT):
        raise VocFormatError(f"{root}: no ImageSets/Main split lists, so no split {split!r}")
    return read_voc_pair(root / "JPEGImages", root / "Annotations", class_names, stems, class_list_root=root)


def _object_xml(name: str, box: np.ndarray, difficult: bool, crowd: bool) -> str:
    x1, y1 = int(round(float(box[0]))), int(round(float(box[1])))
    x2, y2 = max(int(round(float(box[2]))), x1 + 1), max(int(round(float(box[3]))), y1 + 1)
    extra = "<iscrowd>1</iscrowd>" if crowd else ""
    return (
        f"<object><name>{escape(name)}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>{int(difficult)}</difficult>{extra}<bndbox><xmin>{x1 + 1}</xmin><ymin>{y1 + 1}</ymin>"
        f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
    )


def write_voc_files(dataset: DetectionSet, xml_dir: Path, image_names: list[str], folder: str = "JPEGImages") -> None:
    """One VOC XML per image into ``xml_dir`` (named after ``image_names``' stems)."""
    xml_dir.mkdir(parents=True, exist_ok=True)
    for image, name in zip(dataset.images, image_names, strict=True):
        objects = "".join(
            _object_xml(dataset.class_names[int(label)], box, bool(difficult), bool(crowd))
            for box, label, difficult, crowd in zip(
                image.boxes, image.labels, image.difficult, image.iscrowd, strict=True
            )
        )
        (xml_dir / f"{Path(name).stem}.xml").write_text(
            f"<annotation><folder>{escape(folder)}</folder><filename>{escape(name)}</filename>"
            f"<size><width>{image.width}</width><height>{image.height}</height><depth>3</depth></size>"
            f"<segmented>0</segmented>{objects}</annotation>\n",
            encoding="utf-8",
        )


def write_voc(splits: Mapping[str, DetectionSet], out: str | Path, overwrite: bool = False) -> Path:
    """Write ``splits`` as one VOC folder (atomically): XML, images, ImageSets/Main lists, labels.txt.

    All splits share ``JPEGImages/``, so image stems must be unique across them.
    """
    from amlvision.detection.convert import common_classes

    class_names = common_classes(splits)
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        used: dict[str, Path] = {}
        for split, dataset in splits.items():
            names = []
            for image in dataset.images:
                stem = image.path.stem
                if used.get(stem, image.path) != image.path:
                    raise VocFormatError(f"two images named {stem}.* ({used[stem]}, {image.path}): VOC ids must differ")
                used[stem] = image.path
                names.append(image.path.name)
                place_image(image.path, tmp / "JPEGImages" / image.path.name)
            write_voc_files(dataset, tmp / "Annotations", names)
            (tmp / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
            (tmp / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{Path(n).stem}\n" for n in names))
        (tmp / "labels.txt").write_text("".join(f"{name}\n" for name in class_names), encoding="utf-8")
    return out
