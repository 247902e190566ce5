"""Task functions every competitor runs; importable so that every library can pickle them."""


def identity(x):
    return x


def countdown(n):
    while n > 0:
        n -= 1
    return n
