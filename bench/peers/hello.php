<?php
// A PHP-FPM hello world.
header('Content-Type: text/plain');
echo 'Hello World';
