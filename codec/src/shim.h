/* The C surface of shim.c; mirrored by src/ffi.rs. */
#ifndef TESSERA_SHIM_H
#define TESSERA_SHIM_H

#include <stdint.h>

#define TSR_AGAIN 1
#define TSR_EOF 2

#define TSR_H264 0
#define TSR_HEVC 1

typedef struct tsr_decoder tsr_decoder;
typedef struct tsr_scaler tsr_scaler;
typedef struct tsr_encoder tsr_encoder;
typedef struct tsr_aac tsr_aac;
/* A reference to a decoded or scaled picture (an AVFrame), safe to hand to another thread. */
typedef struct tsr_frame tsr_frame;

/* A picture; its planes belong to whoever produced it and stay valid until its next call. */
typedef struct {
    const uint8_t *plane[4];
    int stride[4];
    int width;
    int height;
    int format; /* AVPixelFormat */
    int64_t pts;
} tsr_picture;

/* A compressed frame; its bytes stay valid until the producer's next call. */
typedef struct {
    const uint8_t *data;
    int size;
    int64_t pts;
    int64_t dts;
    int key;
} tsr_packet;

typedef struct {
    int width;
    int height;
    int fps_num;
    int fps_den;
    int64_t bitrate;
    int64_t maxrate;
    int64_t bufsize;
    int keyint;
    int threads;
    const char *preset;
    const char *tune;
    const char *profile;
    const char *params;
} tsr_encoder_config;

const char *tsr_version(void);
void tsr_quiet(void);

int tsr_decoder_open(int codec, const uint8_t *extradata, int extradata_size, int threads, tsr_decoder **out,
                     char *err, int errlen);
int tsr_decoder_send(tsr_decoder *d, const uint8_t *data, int size, int64_t pts, int64_t dts, int key, char *err,
                     int errlen);
int tsr_decoder_receive(tsr_decoder *d, tsr_frame **out, char *err, int errlen);
void tsr_decoder_close(tsr_decoder *d);

int tsr_scaler_open(int width, int height, int bicubic, tsr_scaler **out, char *err, int errlen);
int tsr_scale(tsr_scaler *s, const tsr_picture *in, tsr_frame **out, char *err, int errlen);
void tsr_scaler_close(tsr_scaler *s);

int tsr_encoder_open(const tsr_encoder_config *c, tsr_encoder **out, char *err, int errlen);
int tsr_encoder_send(tsr_encoder *e, const tsr_picture *pic, int force_idr, char *err, int errlen);
int tsr_encoder_send_frame(tsr_encoder *e, const tsr_frame *frame, int force_idr, char *err, int errlen);
int tsr_encoder_receive(tsr_encoder *e, tsr_packet *pkt, char *err, int errlen);
void tsr_encoder_close(tsr_encoder *e);

int tsr_aac_open(int sample_rate, int channels, int64_t bitrate, tsr_aac **out, char *err, int errlen);
int tsr_aac_frame_size(const tsr_aac *a);
int tsr_aac_config(const tsr_aac *a, const uint8_t **data, int *size);
int tsr_aac_send(tsr_aac *a, const float *const *planes, int channels, int64_t pts, char *err, int errlen);
int tsr_aac_receive(tsr_aac *a, tsr_packet *pkt, char *err, int errlen);
void tsr_aac_close(tsr_aac *a);

void tsr_frame_picture(const tsr_frame *f, tsr_picture *pic);
void tsr_frame_free(tsr_frame *f);

#endif
