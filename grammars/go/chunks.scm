(function_declaration) @chunk
(method_declaration) @chunk
(type_declaration) @chunk
