/* basinlab: entry point. Dispatches to the sub-commands (train, serve, version, ...). */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "version") == 0) {
        printf("basinlab %s\n", BASINLAB_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: basinlab version\n");
    return 2;
}
