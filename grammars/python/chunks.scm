(function_definition) @chunk
(class_definition) @chunk
(decorated_definition) @chunk
