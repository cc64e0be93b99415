# A WSGI hello world for uWSGI, the C application server postern is compared with.
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '11')])
    return [b'Hello World']
