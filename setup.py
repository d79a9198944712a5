"Packaging read from settings.ini (nbdev 2 layout, without pkg_resources)."
from configparser import ConfigParser
from setuptools import setup, find_packages

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']
reqs = lambda key: cfg.get(key, '').split()

setup(
    name=cfg['lib_name'], version=cfg['version'], description=cfg['description'],
    author=cfg['author'], author_email=cfg['author_email'], license='Apache-2.0',
    url=cfg['git_url'], python_requires='>=' + cfg['min_python'],
    packages=find_packages(include=['ppma', 'ppma.*']),
    package_data={'ppma': ['assets/*.onnx', 'assets/*.md', 'cards/*.md', 'cards/*.csv', 'cards/classes/*.txt', 'cards/splits/*/*.csv']},
    install_requires=reqs('requirements'),
    extras_require={'dev': reqs('dev_requirements'), 'lab': reqs('lab_requirements'), 'hf': reqs('hf_requirements'),
                    'docs': reqs('docs_requirements')},
    entry_points={'console_scripts': cfg['console_scripts'].split()},
    long_description=open('README.md', encoding='utf-8').read(), long_description_content_type='text/markdown',
)
