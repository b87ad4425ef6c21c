"""The formats layer: files on disk, read and written, importing nothing else of amlvision.

Everything above (``amlvision.data``, sources, training, serving, commands) builds on these modules;
none of them imports upward (tests/test_layers.py checks it). ``amlvision.ctf`` (CNTK Text Format)
belongs to this layer too and stays where it is.

- ``atomic``      the one "write into a temporary folder, then rename into place" helper
- ``packed``      the memory-mappable packed dataset directory
- ``mapfile``     CNTK ImageDeserializer map files and ``class_names.txt``
- ``meanxml``     the OpenCV XML mean image of CNTK's ``mean`` transform
- ``datasetjson`` the ``dataset.json`` that ``pack --to ctf|map`` writes (one reader, one error policy)
- ``splits``      the split vocabulary (``train``, ``val``/``validation``, ``test``, ``all``)
- ``conda``       conda_dependencies.yml, the dependency list every run target builds from
"""
