/* png_tiles A.png ROW COL B.png ROW COL [SIZE]: whether tile (ROW, COL) of grid
 * A and tile (ROW, COL) of grid B hold the same pixels, read with libpng's
 * reader (not vaec's writer).  Tiles are SIZE x SIZE pixels (default 28), 2
 * apart and 2 from the edge (src/images.h).  Exit 0 when equal, 1 when they
 * differ (the count of differing pixels printed), 2 on a bad file or tile. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>

#define BORDER 2

typedef struct {
    unsigned width, height;
    png_bytep *rows;
} gray_image;

static int load(const char *path, gray_image *im) {
    png_image img = {.version = PNG_IMAGE_VERSION};
    if (!png_image_begin_read_from_file(&img, path)) return -1;
    img.format = PNG_FORMAT_GRAY;
    png_bytep px = malloc(PNG_IMAGE_SIZE(img));
    if (!px || !png_image_finish_read(&img, NULL, px, 0, NULL)) {
        free(px);
        png_image_free(&img);
        return -1;
    }
    im->width = img.width;
    im->height = img.height;
    im->rows = malloc(sizeof *im->rows * img.height);
    if (!im->rows) abort();
    for (unsigned y = 0; y < img.height; y++) im->rows[y] = px + (size_t)y * img.width;
    return 0;
}

/* The pixel (y, x) of tile (r, c), or -1 outside the image. */
static void unload(gray_image *im) {
    if (im->height) free(im->rows[0]);
    free(im->rows);
}

static int pixel(const gray_image *im, long r, long c, int size, int y, int x) {
    long py = BORDER + r * (size + BORDER) + y, px = BORDER + c * (size + BORDER) + x;
    if (r < 0 || c < 0 || py >= (long)im->height || px >= (long)im->width) return -1;
    return im->rows[py][px];
}

int main(int argc, char **argv) {
    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: png_tiles A.png ROW COL B.png ROW COL [SIZE]\n");
        return 2;
    }
    int size = argc == 8 ? atoi(argv[7]) : 28;
    gray_image a = {0}, b = {0};
    if (load(argv[1], &a) || load(argv[4], &b)) {
        unload(&a);
        fprintf(stderr, "png_tiles: cannot read %s or %s\n", argv[1], argv[4]);
        return 2;
    }
    long ra = atol(argv[2]), ca = atol(argv[3]), rb = atol(argv[5]), cb = atol(argv[6]);
    int differ = 0;
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            int p = pixel(&a, ra, ca, size, y, x), q = pixel(&b, rb, cb, size, y, x);
            if (p < 0 || q < 0) {
                fprintf(stderr, "png_tiles: tile (%ld, %ld) or (%ld, %ld) is outside its image\n", ra, ca, rb, cb);
                unload(&a);
                unload(&b);
                return 2;
            }
            differ += p != q;
        }
    if (differ) printf("%d of %d pixels differ\n", differ, size * size);
    unload(&a);
    unload(&b);
    return differ ? 1 : 0;
}
