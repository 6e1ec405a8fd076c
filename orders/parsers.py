"""A multipart parser that refuses file names carrying a path.

Django keeps only the last part of an uploaded file's name; this parser notices when a
client sent a path (`../../x.jpg`, `C:\\x.jpg`) and refuses the whole request instead."""

from django.conf import settings
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles, MultiPartParser


class _PathAwareParser(DjangoMultiPartParser):
    path_in_name = False

    def sanitize_file_name(self, file_name):
        if any(mark in (file_name or "") for mark in ("/", "\\", "..")):
            self.path_in_name = True
        return super().sanitize_file_name(file_name)


class StrictMultiPartParser(MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        request = parser_context["request"]
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        try:
            parser = _PathAwareParser(meta, stream, request.upload_handlers, encoding)
            data, files = parser.parse()
        except MultiPartParserError as exc:
            raise ParseError(f"Multipart form parse error - {exc}") from exc
        if parser.path_in_name:
            raise ParseError("File names may not contain a path.")
        return DataAndFiles(data, files)
